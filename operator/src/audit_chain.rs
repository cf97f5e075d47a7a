//! Judges a bot server's audit chain (pure). The operator records a signed row of the
//! chain in the GeneralBot's status; at each later check the bot server must still hold
//! that row with the same hash, and its head must be signed by a key it holds. A row
//! gone means the log was truncated; a changed hash means it was rewritten; an unsigned
//! head could have been forged by whoever can write to the database. A finding keeps the
//! recorded row (the evidence) until someone who has looked sets the
//! [`ACCEPT_AUDIT_HEAD`] annotation to the head's sequence number.

use generalbot_crds::contract::AuditHead;
use generalbot_crds::v1alpha1::AuditChainStatus;
use jiff::Timestamp;

/// Set to the current head's sequence number to accept a finding and record the chain
/// as it now stands.
pub const ACCEPT_AUDIT_HEAD: &str = "generalbots.io/accept-audit-head";

/// The `AuditChainIntact` condition.
pub const CONDITION: &str = "AuditChainIntact";

/// The condition's reasons.
pub mod reasons {
    /// The recorded row is in place and the head is signed.
    pub const VERIFIED: &str = "Verified";
    /// The recorded row is gone.
    pub const TRUNCATED: &str = "Truncated";
    /// The recorded row has another hash.
    pub const REWRITTEN: &str = "Rewritten";
    /// The head is not signed by a key the bot server holds.
    pub const UNSIGNED: &str = "Unsigned";
    /// A finding someone accepted with the annotation.
    pub const ACCEPTED: &str = "Accepted";
    /// The bot server did not answer.
    pub const NOT_REACHABLE: &str = "NotReachable";
}

/// What a check concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// The condition's reason.
    pub reason: &'static str,
    /// The condition's message (stable while nothing changes, so a steady check writes
    /// nothing).
    pub message: String,
    /// The row to record from now on (`None`: keep the recorded one).
    pub record: Option<AuditChainStatus>,
}

impl Judgement {
    /// Whether the chain was found truncated, rewritten or unsigned.
    pub fn is_finding(&self) -> bool {
        self.status == "False"
    }
}

/// Judges `head` (asked with `?at=` the recorded row's sequence number) against
/// `recorded`; `accepted` is the [`ACCEPT_AUDIT_HEAD`] annotation.
pub fn judge(
    recorded: Option<&AuditChainStatus>,
    head: Option<&AuditHead>,
    accepted: Option<&str>,
    now: Timestamp,
) -> Judgement {
    let Some(head) = head else {
        return Judgement {
            status: "Unknown",
            reason: reasons::NOT_REACHABLE,
            message: "the bot server did not answer for its audit chain head; the recorded row stays as it is".to_owned(),
            record: None,
        };
    };
    let as_recorded = || AuditChainStatus {
        seq: head.seq,
        hash: head.hash.clone(),
        recorded_at: now.to_string(),
    };
    let finding = match recorded {
        Some(r) if r.seq > 0 => match &head.at {
            None => Some((
                reasons::TRUNCATED,
                format!(
                    "row {} of the audit log, recorded at {}, is gone (the head is now row {}): the audit log was truncated",
                    r.seq, r.recorded_at, head.seq
                ),
            )),
            Some(at) if at.hash != r.hash => Some((
                reasons::REWRITTEN,
                format!(
                    "row {} of the audit log, recorded at {}, has another hash now: the audit log was rewritten",
                    r.seq, r.recorded_at
                ),
            )),
            Some(_) => None,
        },
        _ => None,
    }
    .or_else(|| {
        (head.seq > 0 && !head.signed).then(|| {
            (
                reasons::UNSIGNED,
                format!(
                    "the audit log's last row ({}) is not signed by a key the bot server holds: it could have been forged",
                    head.seq
                ),
            )
        })
    });
    if let Some((reason, message)) = finding {
        if accepted == Some(head.seq.to_string().as_str()) {
            return Judgement {
                status: "True",
                reason: reasons::ACCEPTED,
                message: format!(
                    "a finding was accepted at row {} ({ACCEPT_AUDIT_HEAD}); the chain is recorded anew from there",
                    head.seq
                ),
                record: Some(as_recorded()),
            };
        }
        return Judgement {
            status: "False",
            reason,
            message: format!(
                "{message}. Investigate, then set the annotation {ACCEPT_AUDIT_HEAD}={} to accept the chain as it now stands",
                head.seq
            ),
            record: None,
        };
    }
    let record = (head.seq > 0 && recorded.map(|r| r.seq) != Some(head.seq)).then(as_recorded);
    let message = match record.as_ref().or(recorded) {
        Some(r) => format!(
            "row {} of the audit log, recorded at {}, is in place; the head is signed by key {}",
            r.seq,
            r.recorded_at,
            if head.mac_key.is_empty() {
                "(none: the log is empty)"
            } else {
                head.mac_key.as_str()
            }
        ),
        None => "the audit log is empty".to_owned(),
    };
    Judgement {
        status: "True",
        reason: reasons::VERIFIED,
        message,
        record,
    }
}

#[cfg(test)]
mod tests {
    use generalbot_crds::contract::AuditMark;

    use super::*;

    fn now() -> Timestamp {
        "2026-11-30T10:00:00Z".parse().unwrap()
    }

    fn head(seq: i64, hash: &str, signed: bool, at: Option<(i64, &str)>) -> AuditHead {
        AuditHead {
            seq,
            hash: hash.to_owned(),
            mac_key: "h1".to_owned(),
            signed,
            at: at.map(|(seq, hash)| AuditMark {
                seq,
                hash: hash.to_owned(),
            }),
        }
    }

    fn recorded(seq: i64, hash: &str) -> AuditChainStatus {
        AuditChainStatus {
            seq,
            hash: hash.to_owned(),
            recorded_at: "2026-11-30T09:00:00Z".to_owned(),
        }
    }

    #[test]
    fn a_growing_signed_chain_is_verified_and_recorded() {
        let first = judge(None, Some(&head(5, "e", true, None)), None, now());
        assert_eq!((first.status, first.reason), ("True", reasons::VERIFIED));
        assert_eq!(first.record.as_ref().unwrap().seq, 5);
        let r = recorded(5, "e");
        let later = judge(
            Some(&r),
            Some(&head(9, "i", true, Some((5, "e")))),
            None,
            now(),
        );
        assert_eq!(later.status, "True");
        assert_eq!(later.record.unwrap().seq, 9);
        // Nothing new: nothing to record, and the same message as before.
        let r9 = recorded(9, "i");
        let steady = |_: ()| {
            judge(
                Some(&r9),
                Some(&head(9, "i", true, Some((9, "i")))),
                None,
                now(),
            )
        };
        assert_eq!(steady(()).record, None);
        assert_eq!(steady(()).message, steady(()).message);
    }

    #[test]
    fn a_truncated_rewritten_or_unsigned_chain_is_a_finding_that_keeps_the_evidence() {
        let r = recorded(5, "e");
        let truncated = judge(Some(&r), Some(&head(3, "c", true, None)), None, now());
        assert_eq!(
            (truncated.status, truncated.reason),
            ("False", reasons::TRUNCATED)
        );
        assert!(truncated.message.contains("row 5"), "{}", truncated.message);
        assert_eq!(truncated.record, None, "the recorded row is the evidence");
        // Truncated and grown back past the recorded row: the row is there, another hash.
        let rewritten = judge(
            Some(&r),
            Some(&head(8, "h", true, Some((5, "x")))),
            None,
            now(),
        );
        assert_eq!(rewritten.reason, reasons::REWRITTEN);
        let unsigned = judge(
            Some(&r),
            Some(&head(8, "h", false, Some((5, "e")))),
            None,
            now(),
        );
        assert_eq!(
            (unsigned.status, unsigned.reason),
            ("False", reasons::UNSIGNED)
        );
        // Accepting it records the chain as it stands.
        let accepted = judge(Some(&r), Some(&head(3, "c", true, None)), Some("3"), now());
        assert_eq!(
            (accepted.status, accepted.reason),
            ("True", reasons::ACCEPTED)
        );
        assert_eq!(accepted.record.unwrap().seq, 3);
        // An annotation naming another row accepts nothing.
        let stale = judge(Some(&r), Some(&head(3, "c", true, None)), Some("2"), now());
        assert!(stale.is_finding());
    }

    #[test]
    fn an_unreachable_server_changes_nothing() {
        let r = recorded(5, "e");
        let j = judge(Some(&r), None, None, now());
        assert_eq!((j.status, j.record), ("Unknown", None));
    }
}
