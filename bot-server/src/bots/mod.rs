//! Bots: what one is ([`BotDefinition`], written in YAML or JSON), how it is checked and
//! compiled ([`Bot`]), and how it answers.
//!
//! - [`faq`]: knowledge-base entries and their CSV import;
//! - [`rank`]: BM25 ranking with keyword boosts, answer or suggestions;
//! - [`flow`]: conversation flows, checked and compiled; [`answers`]: what an `ask`
//!   accepts;
//! - [`run`]: one turn of a conversation (pure);
//! - [`dir`]: bots loaded from a mounted directory (the operator's ConfigMaps);
//! - [`registry`]: compiled bots, shared by every request, kept in step with the database.

pub mod answers;
pub mod dir;
pub mod faq;
pub mod flow;
pub mod rank;
pub mod registry;
pub mod run;

use serde::{Deserialize, Serialize};

use self::faq::{FaqEntry, FaqError};
use self::flow::{Flow, FlowDefinition, FlowError};
use self::rank::FaqIndex;

/// The default share of a question's meaningful words an FAQ entry must cover.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// The longest welcome or fallback message.
pub const MAX_MESSAGE: usize = 4_096;

/// A bot as written (and as stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotDefinition {
    /// Its name in URLs: lowercase letters, digits and `-`, at most 63.
    pub slug: String,
    /// Its display name (the slug when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it says when a conversation starts.
    pub welcome: String,
    /// What it says when it has no answer.
    pub fallback: String,
    /// The share (0 to 1) of a question's meaningful words the best FAQ entry must
    /// cover for the bot to answer with it (0.5 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The knowledge base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faq: Vec<FaqEntry>,
    /// A CSV file beside the definition holding more of the knowledge base (directory
    /// bots only: a file name, no path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faq_csv: Option<String>,
    /// The conversation flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowDefinition>,
}

/// Why a bot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BotError {
    /// Not a readable definition (the message gives the line and column).
    #[error("the bot definition cannot be read: {0}")]
    Parse(String),
    /// A field breaks a rule.
    #[error("bot field {field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What to fix.
        reason: String,
    },
    /// The flow.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The knowledge base.
    #[error(transparent)]
    Faq(#[from] FaqError),
}

/// Whether a slug is well formed.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Reads a definition from YAML or JSON (JSON is YAML).
pub fn parse_definition(text: &str) -> Result<BotDefinition, BotError> {
    serde_saphyr::from_str(text).map_err(|e| BotError::Parse(e.to_string()))
}

/// A bot ready to answer.
#[derive(Debug)]
pub struct Bot {
    /// What it was made from.
    pub definition: BotDefinition,
    /// Its compiled flow.
    pub flow: Option<Flow>,
    /// Its knowledge base.
    pub faq: FaqIndex,
}

impl Bot {
    /// Checks a definition and compiles it. `faq_csv` must already be merged into `faq`.
    pub fn compile(definition: BotDefinition) -> Result<Self, BotError> {
        let field = |field, reason: String| BotError::Field { field, reason };
        if !valid_slug(&definition.slug) {
            return Err(field(
                "slug",
                format!(
                    "{:?} must be lowercase letters, digits and -, at most 63, not starting or ending with -",
                    definition.slug
                ),
            ));
        }
        for (name, text) in [
            ("welcome", &definition.welcome),
            ("fallback", &definition.fallback),
        ] {
            if text.trim().is_empty() || text.len() > MAX_MESSAGE {
                return Err(field(
                    name,
                    format!("must be between 1 and {MAX_MESSAGE} bytes"),
                ));
            }
        }
        if let Some(name) = &definition.name
            && (name.trim().is_empty() || name.len() > 200)
        {
            return Err(field("name", "must be between 1 and 200 bytes".into()));
        }
        let threshold = definition.threshold.unwrap_or(DEFAULT_THRESHOLD);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(field(
                "threshold",
                format!("{threshold} must be between 0 and 1"),
            ));
        }
        if definition.faq_csv.is_some() {
            return Err(field(
                "faq_csv",
                "names a file, which only a bot directory can hold; import the CSV with PUT /api/bots/{slug}/faq".into(),
            ));
        }
        faq::check(&definition.faq)?;
        let flow = definition.flow.as_ref().map(flow::compile).transpose()?;
        let faq = FaqIndex::new(definition.faq.clone(), threshold);
        Ok(Self {
            definition,
            flow,
            faq,
        })
    }

    /// Its display name.
    pub fn name(&self) -> &str {
        self.definition
            .name
            .as_deref()
            .unwrap_or(&self.definition.slug)
    }
}

/// The example bot `--dev` seeds, also the README's.
pub const EXAMPLE: &str = include_str!("../../../examples/bots/support.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_bot_compiles() {
        let b = Bot::compile(parse_definition(EXAMPLE).unwrap()).unwrap();
        assert!(b.flow.is_some());
        assert!(b.faq.entries().len() >= 5);
    }

    #[test]
    fn bad_fields_are_named() {
        let e =
            Bot::compile(parse_definition("slug: Bad Slug\nwelcome: hi\nfallback: no\n").unwrap())
                .unwrap_err();
        assert!(e.to_string().starts_with("bot field slug:"), "{e}");
        let e = Bot::compile(parse_definition("slug: ok\nwelcome: ''\nfallback: no\n").unwrap())
            .unwrap_err();
        assert!(e.to_string().starts_with("bot field welcome:"), "{e}");
        let e = parse_definition("slug: ok\nwelcome: hi\nfallback: no\nunknown: 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown"), "{e}");
        let e = Bot::compile(
            parse_definition("slug: ok\nwelcome: hi\nfallback: no\nthreshold: 2\n").unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("threshold"), "{e}");
    }
}
