//! Decides whether a live object still holds everything we want of it, so that a
//! reconcile of an unchanged GeneralBot makes no write at all, while a hand edit of a
//! field we own is put back.
//!
//! "Holds everything" means: every field we set is present in the live object with the
//! same value. Fields the API server or other controllers add (defaults, status,
//! `clusterIP`, managed fields) are ignored. Lists must match item by item, since we own
//! every list we write. A field we set that is missing from the live object is drift
//! (a hand edit deleted it), except the zero values the API server itself omits.
//! Resource quantities compare by value in every form Kubernetes accepts (`1000m`
//! equals `1`, `1e3` equals `1k`), because the API server rewrites them canonically.
//!
//! This catches a changed or deleted field; a setting the spec no longer asks for is
//! caught by the hash of the desired object recorded on it ([`crate::apply`]).

use serde_json::Value;

/// True when `live` contains everything in `desired`.
pub fn contains(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| {
            match have.get(key) {
                Some(h) => contains(value, h),
                // The API server omits empty values (Go's `omitempty`: "", 0, empty
                // lists and maps, and `false` in the few fields that are plain Go
                // booleans); wanting "nothing" is met by its absence. A `false` in a
                // pointer field (`allowPrivilegeEscalation`, `hostUsers`, …) is kept
                // by the API server, so its absence is a hand edit.
                None => {
                    is_empty(value)
                        && (value != &Value::Bool(false) || PLAIN_BOOLS.contains(&key.as_str()))
                }
            }
        }),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains(w, h))
        }
        (Value::String(w), Value::String(h)) => w == h || same_quantity(w, h),
        (Value::Null, _) => true,
        (w, h) => w == h,
    }
}

/// Fields of the Kubernetes API that are plain (non-pointer) Go booleans with
/// `omitempty`: the API server drops them when `false`.
const PLAIN_BOOLS: &[&str] = &[
    "readOnly",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "stdin",
    "stdinOnce",
    "tty",
    "publishNotReadyAddresses",
    "allocateLoadBalancerNodePorts",
];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

/// Compares two strings as Kubernetes quantities, when both are quantities.
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity_nanos(a), quantity_nanos(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A quantity in billionths of its unit, or `None` when it is not a quantity. Follows
/// the grammar of `k8s.io/apimachinery/pkg/api/resource`: an optional sign, a decimal
/// number, then a binary suffix (`Ki` … `Ei`), a decimal suffix (`n`, `u`, `m`, `k`,
/// `M` … `E`) or a decimal exponent (`e3`, `E-2`).
fn quantity_nanos(s: &str) -> Option<i128> {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    const NANO: i128 = 1_000_000_000;
    let pow = |base: i128, n: u32| base.checked_pow(n);
    let scale: i128 = match suffix {
        "" => NANO,
        "n" => 1,
        "u" => 1_000,
        "m" => 1_000_000,
        "k" => NANO * 1_000,
        "M" => NANO * pow(1_000, 2)?,
        "G" => NANO * pow(1_000, 3)?,
        "T" => NANO * pow(1_000, 4)?,
        "P" => NANO * pow(1_000, 5)?,
        "E" => NANO * pow(1_000, 6)?,
        "Ki" => NANO * 1024,
        "Mi" => NANO * pow(1024, 2)?,
        "Gi" => NANO * pow(1024, 3)?,
        "Ti" => NANO * pow(1024, 4)?,
        "Pi" => NANO * pow(1024, 5)?,
        "Ei" => NANO * pow(1024, 6)?,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp.get(1..)?.parse().ok()?;
            if e >= 0 {
                NANO.checked_mul(pow(10, u32::try_from(e).ok()?)?)?
            } else {
                NANO.checked_div(pow(10, e.unsigned_abs())?)
                    .filter(|v| *v > 0)?
            }
        }
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole.checked_mul(scale)?;
    let mut unit = scale;
    for digit in frac.chars() {
        let d = i128::from(digit.to_digit(10)?);
        if unit % 10 != 0 {
            // Finer than a billionth: Kubernetes rounds up there.
            if d != 0 {
                value = value.checked_add(1)?;
            }
            break;
        }
        unit /= 10;
        value = value.checked_add(d.checked_mul(unit)?)?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_live_fields_are_ignored() {
        let want = json!({"spec": {"replicas": 2}});
        let have = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600}, "status": {}});
        assert!(contains(&want, &have));
    }

    #[test]
    fn a_changed_field_is_drift() {
        assert!(!contains(&json!({"a": {"b": 1}}), &json!({"a": {"b": 2}})));
        assert!(!contains(&json!({"a": "x"}), &json!({})));
    }

    #[test]
    fn lists_match_item_by_item() {
        assert!(contains(&json!([{"a": 1}]), &json!([{"a": 1, "b": 2}])));
        assert!(!contains(&json!([{"a": 1}]), &json!([{"a": 1}, {"a": 2}])));
        assert!(!contains(&json!([1, 2]), &json!([2, 1])));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(contains(&json!("1000m"), &json!("1")));
        assert!(contains(&json!("0.5"), &json!("500m")));
        assert!(contains(&json!("1Gi"), &json!("1024Mi")));
        assert!(!contains(&json!("1Gi"), &json!("1G")));
        assert!(!contains(&json!("abc"), &json!("abd")));
        assert!(contains(&json!("1e3"), &json!("1k")));
        assert!(contains(&json!("1E-3"), &json!("1m")));
        assert!(contains(&json!("2Ei"), &json!("2048Pi")));
        assert!(contains(&json!("500u"), &json!("500000n")));
        assert!(contains(&json!("0.1"), &json!("100m")));
        assert!(contains(&json!("1.5Gi"), &json!("1536Mi")));
        assert!(!contains(&json!("1e3"), &json!("1")));
    }

    #[test]
    fn a_deleted_hardening_field_is_drift() {
        let want =
            json!({"securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true}});
        assert!(!contains(
            &want,
            &json!({"securityContext": {"runAsNonRoot": true}})
        ));
        assert!(!contains(
            &json!({"automountServiceAccountToken": false}),
            &json!({})
        ));
        // Plain Go booleans are omitted when false: their absence is no drift.
        assert!(contains(&json!({"readOnly": false}), &json!({})));
    }

    #[test]
    fn absent_empty_values_match() {
        assert!(contains(&json!({"a": [], "b": {}}), &json!({})));
        assert!(contains(
            &json!({"value": "", "readOnly": false, "n": 0}),
            &json!({})
        ));
        assert!(!contains(&json!({"hostUsers": false}), &json!({})));
        assert!(!contains(&json!({"readOnly": true}), &json!({})));
    }
}
