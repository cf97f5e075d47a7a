//! Decides whether a live object still holds everything we want of it, so that a
//! reconcile of an unchanged GeneralBot makes no write at all, while a hand edit of a
//! field we own is put back.
//!
//! "Holds everything" means: every field we set is present in the live object with the
//! same value. Fields the API server or other controllers add (defaults, status,
//! `clusterIP`, managed fields) are ignored. Lists must match item by item, since we own
//! every list we write. Resource quantities compare by value (`1000m` equals `1`),
//! because the API server rewrites them into canonical form.

use serde_json::Value;

/// True when `live` contains everything in `desired`.
pub fn contains(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, value)| {
            match have.get(key) {
                Some(h) => contains(value, h),
                // The API server omits empty values (Go's `omitempty`: "", 0, false,
                // empty lists and maps); wanting "nothing" is met by its absence.
                None => is_empty(value),
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
    match (quantity_millis(a), quantity_millis(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A quantity in thousandths of its unit, or `None` when it is not a quantity we know.
/// Covers the forms a user writes for CPU and memory: plain and decimal numbers, `m`,
/// decimal (`k`, `M`, `G`, `T`) and binary (`Ki`, `Mi`, `Gi`, `Ti`) suffixes.
fn quantity_millis(s: &str) -> Option<i128> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let scale: i128 = match suffix {
        "" => 1000,
        "m" => 1,
        "k" => 1000 * 1000,
        "M" => 1000 * 1_000_000,
        "G" => 1000 * 1_000_000_000,
        "T" => 1000 * 1_000_000_000_000,
        "Ki" => 1000 * 1024,
        "Mi" => 1000 * 1024 * 1024,
        "Gi" => 1000 * 1024 * 1024 * 1024,
        "Ti" => 1000 * 1024 * 1024 * 1024 * 1024,
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
        unit /= 10;
        let d = i128::from(digit.to_digit(10)?);
        value = value.checked_add(d.checked_mul(unit)?)?;
    }
    Some(value)
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
    }

    #[test]
    fn absent_empty_values_match() {
        assert!(contains(&json!({"a": [], "b": {}}), &json!({})));
        assert!(contains(
            &json!({"value": "", "readOnly": false, "n": 0}),
            &json!({})
        ));
        assert!(!contains(&json!({"readOnly": true}), &json!({})));
    }
}
