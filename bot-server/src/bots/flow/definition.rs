//! A flow as written in YAML or JSON: the serde types, refusing unknown fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A flow as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowDefinition {
    /// The first step (the first listed when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The most steps one message may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps_per_turn: Option<u16>,
    /// The steps, in order: a step without `next` goes on to the one below it.
    pub steps: Vec<StepDefinition>,
}

/// One step as written: an `id` and exactly one action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDefinition {
    /// Its name, for jumps and messages.
    pub id: String,
    /// Says a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// Asks a question and waits for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<String>,
    /// What an answer must be (`ask` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    /// The accepted answers of `expect: choice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
    /// The variable an answer is saved in (`ask` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
    /// Re-asks after an invalid answer (`ask` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u8>,
    /// Where to go when the retries run out (`ask` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<String>,
    /// Jumps to the first arm whose condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Vec<ArmDefinition>>,
    /// Where a branch goes when no arm holds (the next step when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otherwise: Option<String>,
    /// Sets variables (values may use `{var}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<BTreeMap<String, String>>,
    /// Answers from the knowledge base, asked this (`{input}` when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
    /// Where a lookup goes when the knowledge base has no confident answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_miss: Option<String>,
    /// Jumps to a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goto: Option<String>,
    /// Ends the flow (`true`, or a last message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndDefinition>,
    /// The step after this one (the one below by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `end: true` or `end: "last words"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EndDefinition {
    /// Ends silently.
    Flag(bool),
    /// Ends with a message.
    Say(String),
}

/// What an answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Any non-empty text.
    Text,
    /// An email address.
    Email,
    /// A number.
    Number,
    /// One of `choices` (or its position, from 1).
    Choice,
}

/// One arm of a branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArmDefinition {
    /// The condition.
    pub when: Condition,
    /// Where to go when it holds.
    pub goto: String,
}

/// A condition on a variable (comparisons ignore case and surrounding spaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The variable.
    pub var: String,
    /// Holds when the variable equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Holds when the variable equals one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// Holds when the variable is set (`true`) or not (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}
