//! Whether an answer to an `ask` step is valid (text, email, number or one of the
//! choices, by name or position) and the value saved, and the hint given when it is not.

use super::flow::{Expect, MAX_SAVED_ANSWER};

/// The accepted value of an answer, if valid.
pub fn valid_answer(expect: Expect, choices: &[String], input: &str) -> Option<String> {
    if input.is_empty() || input.len() > MAX_SAVED_ANSWER {
        return None;
    }
    match expect {
        Expect::Text => Some(input.to_owned()),
        Expect::Email => {
            let (local, domain) = input.rsplit_once('@')?;
            let ok = !local.is_empty()
                && local.len() <= 64
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && input.len() <= 254
                && !input.chars().any(|c| c.is_whitespace() || c.is_control())
                && !domain.contains('@');
            ok.then(|| input.to_lowercase())
        }
        Expect::Number => input
            .replace(',', ".")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| n.to_string()),
        Expect::Choice => {
            let lower = input.to_lowercase();
            choices
                .iter()
                .find(|c| c.to_lowercase() == lower)
                .or_else(|| {
                    input
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| n.checked_sub(1))
                        .and_then(|n| choices.get(n))
                })
                .cloned()
        }
    }
}

/// What to say before asking again.
pub fn hint(expect: Expect, choices: &[String]) -> String {
    match expect {
        Expect::Text => "Please answer with some text.".into(),
        Expect::Email => "That does not look like an email address.".into(),
        Expect::Number => "Please answer with a number.".into(),
        Expect::Choice => format!("Please choose one of: {}.", choices.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_validated() {
        let c = vec!["Red".to_owned(), "Blue".to_owned()];
        assert_eq!(
            valid_answer(Expect::Choice, &c, "blue").as_deref(),
            Some("Blue")
        );
        assert_eq!(
            valid_answer(Expect::Choice, &c, "2").as_deref(),
            Some("Blue")
        );
        assert_eq!(valid_answer(Expect::Choice, &c, "0"), None);
        assert_eq!(
            valid_answer(Expect::Number, &c, "3,5").as_deref(),
            Some("3.5")
        );
        assert_eq!(valid_answer(Expect::Number, &c, "NaN"), None);
        assert_eq!(valid_answer(Expect::Email, &c, "a@b"), None);
        assert_eq!(valid_answer(Expect::Email, &c, "a b@c.de"), None);
        assert_eq!(valid_answer(Expect::Text, &c, ""), None);
    }
}
