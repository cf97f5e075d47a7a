//! Running a bot for one message: the flow from where the conversation waits, step by
//! step up to the flow's limit, then the knowledge base once the flow has ended (or when
//! the bot has none). Pure: the state goes in and out; storage is the caller's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Bot;
use super::answers::{hint, valid_answer};
use super::flow::{Action, Condition, INPUT_VAR, MAX_SAVED_ANSWER};
use super::rank::Lookup;

/// The most variables a conversation holds.
pub const MAX_VARS: usize = 64;

/// Where a conversation stands (stored encrypted with it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    /// The `ask` step waiting for an answer (by id, so editing a bot never misroutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Invalid answers to the waiting step so far.
    #[serde(default)]
    pub attempts: u8,
    /// The flow's variables.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// True once the flow has ended: the knowledge base answers from then on.
    #[serde(default)]
    pub done: bool,
}

/// One message from the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// Questions the person may have meant (when the bot is unsure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
}

impl Reply {
    fn say(text: String) -> Self {
        Self {
            text,
            suggestions: Vec::new(),
        }
    }
}

/// What a turn did, for metrics and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The flow ran.
    Flow,
    /// The knowledge base answered.
    Answered,
    /// The bot was unsure.
    Unsure,
    /// The flow hit its step limit and was stopped.
    StepLimit,
}

/// Starts a conversation: the welcome, then the flow up to its first question.
pub fn begin(bot: &Bot, state: &mut ConversationState) -> (Vec<Reply>, Outcome) {
    let mut replies = vec![Reply::say(bot.definition.welcome.clone())];
    let outcome = match &bot.flow {
        Some(flow) => run_from(bot, state, Some(flow.start), &mut replies),
        None => {
            state.done = true;
            Outcome::Flow
        }
    };
    (replies, outcome)
}

/// Answers one message.
pub fn turn(bot: &Bot, state: &mut ConversationState, input: &str) -> (Vec<Reply>, Outcome) {
    let input = input.trim();
    let mut replies = Vec::new();
    let waiting = match (&bot.flow, &state.waiting) {
        (Some(flow), Some(id)) if !state.done => flow.position(id),
        _ => None,
    };
    let (Some(flow), Some(at)) = (&bot.flow, waiting) else {
        state.done = true;
        state.waiting = None;
        let outcome = answer(bot, input, &mut replies);
        return (replies, outcome);
    };
    set_var(state, INPUT_VAR, input);
    let Some(step) = flow.steps.get(at) else {
        state.done = true;
        return (replies, Outcome::Flow);
    };
    let Action::Ask {
        prompt,
        expect,
        choices,
        save_as,
        retries,
        on_fail,
    } = &step.action
    else {
        state.waiting = None;
        return (replies, Outcome::Flow);
    };
    let next = match valid_answer(*expect, choices, input) {
        Some(value) => {
            if let Some(var) = save_as {
                set_var(state, var, &value);
            }
            state.attempts = 0;
            state.waiting = None;
            step.next
        }
        None if state.attempts < *retries => {
            state.attempts += 1;
            replies.push(Reply::say(format!(
                "{} {}",
                hint(*expect, choices),
                prompt.render(&state.vars)
            )));
            return (replies, Outcome::Flow);
        }
        None => {
            state.attempts = 0;
            state.waiting = None;
            if on_fail.is_none() {
                replies.push(Reply::say(bot.definition.fallback.clone()));
                state.done = true;
                return (replies, Outcome::Unsure);
            }
            *on_fail
        }
    };
    let outcome = run_from(bot, state, next, &mut replies);
    (replies, outcome)
}

fn set_var(state: &mut ConversationState, var: &str, value: &str) {
    if state.vars.len() < MAX_VARS || state.vars.contains_key(var) {
        let value: String = value.chars().take(MAX_SAVED_ANSWER).collect();
        state.vars.insert(var.to_owned(), value);
    }
}

/// Runs steps from `at` until one asks, the flow ends, or the step limit.
fn run_from(
    bot: &Bot,
    state: &mut ConversationState,
    mut at: Option<usize>,
    replies: &mut Vec<Reply>,
) -> Outcome {
    let Some(flow) = &bot.flow else {
        return Outcome::Flow;
    };
    let mut outcome = Outcome::Flow;
    for _ in 0..flow.step_limit {
        let Some(step) = at.and_then(|i| flow.steps.get(i)) else {
            state.done = true;
            state.waiting = None;
            return outcome;
        };
        at = match &step.action {
            Action::Say(t) => {
                replies.push(Reply::say(t.render(&state.vars)));
                step.next
            }
            Action::Ask { prompt, .. } => {
                replies.push(Reply::say(prompt.render(&state.vars)));
                state.waiting = Some(step.id.clone());
                return outcome;
            }
            Action::Branch { arms, otherwise } => arms
                .iter()
                .find(|(c, _)| holds(c, &state.vars))
                .map(|(_, target)| Some(*target))
                .unwrap_or(otherwise.or(step.next)),
            Action::Set(pairs) => {
                for (k, t) in pairs {
                    let v = t.render(&state.vars);
                    set_var(state, k, &v);
                }
                step.next
            }
            Action::Lookup { query, on_miss } => {
                let q = query.render(&state.vars);
                match bot.faq.lookup(&q) {
                    Lookup::Answer { entry, .. } => {
                        outcome = Outcome::Answered;
                        if let Some(e) = bot.faq.entry(entry) {
                            replies.push(Reply::say(e.answer.clone()));
                        }
                        step.next
                    }
                    Lookup::Unsure { closest } => {
                        outcome = Outcome::Unsure;
                        match on_miss {
                            Some(target) => Some(*target),
                            None => {
                                replies.push(unsure(bot, &closest));
                                step.next
                            }
                        }
                    }
                }
            }
            Action::Goto(target) => Some(*target),
            Action::End(t) => {
                if let Some(t) = t {
                    replies.push(Reply::say(t.render(&state.vars)));
                }
                state.done = true;
                state.waiting = None;
                return outcome;
            }
        };
    }
    tracing::warn!(
        bot = %bot.definition.slug,
        limit = flow.step_limit,
        "a flow ran past its step limit without asking; ended"
    );
    replies.push(Reply::say(bot.definition.fallback.clone()));
    state.done = true;
    state.waiting = None;
    Outcome::StepLimit
}

/// The knowledge base's answer, or the fallback with suggestions.
fn answer(bot: &Bot, input: &str, replies: &mut Vec<Reply>) -> Outcome {
    match bot.faq.lookup(input) {
        Lookup::Answer { entry, .. } => match bot.faq.entry(entry) {
            Some(e) => {
                replies.push(Reply::say(e.answer.clone()));
                Outcome::Answered
            }
            None => {
                replies.push(unsure(bot, &[]));
                Outcome::Unsure
            }
        },
        Lookup::Unsure { closest } => {
            replies.push(unsure(bot, &closest));
            Outcome::Unsure
        }
    }
}

fn unsure(bot: &Bot, closest: &[usize]) -> Reply {
    Reply {
        text: bot.definition.fallback.clone(),
        suggestions: closest
            .iter()
            .filter_map(|i| bot.faq.entry(*i).map(|e| e.question.clone()))
            .collect(),
    }
}

fn holds(c: &Condition, vars: &BTreeMap<String, String>) -> bool {
    let value = vars.get(&c.var).map(|v| v.trim().to_lowercase());
    let same = |x: &String| value.as_deref() == Some(x.trim().to_lowercase().as_str());
    if let Some(x) = &c.equals {
        return same(x);
    }
    if let Some(xs) = &c.one_of {
        return xs.iter().any(same);
    }
    c.present
        .is_some_and(|p| p == value.is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::BotDefinition;

    fn bot(yaml: &str) -> Bot {
        Bot::compile(crate::bots::parse_definition(yaml).unwrap()).unwrap()
    }

    const SUPPORT: &str = r#"
slug: support
welcome: Hello!
fallback: Sorry, I do not know that.
faq:
  - question: How do I reset my password?
    answer: Use the reset link.
    keywords: [password]
  - question: What are your opening hours?
    answer: 9 to 5.
flow:
  steps:
    - id: email
      ask: Your email?
      expect: email
      save_as: email
      retries: 1
    - id: topic
      ask: Billing or other?
      expect: choice
      choices: [Billing, Other]
      save_as: topic
    - id: route
      branch:
        - when: { var: topic, equals: billing }
          goto: billing
      otherwise: question
    - id: billing
      say: Billing will mail {email}.
      next: done
    - id: question
      ask: What is your question?
    - id: answer
      lookup: ""
    - id: done
      end: Bye {email}!
"#;

    fn texts(r: &[Reply]) -> Vec<&str> {
        r.iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn a_flow_asks_validates_branches_and_ends_then_the_faq_answers() {
        let b = bot(SUPPORT);
        let mut s = ConversationState::default();
        let (r, _) = begin(&b, &mut s);
        assert_eq!(texts(&r), ["Hello!", "Your email?"]);
        let (r, _) = turn(&b, &mut s, "not an email");
        assert_eq!(
            texts(&r),
            ["That does not look like an email address. Your email?"]
        );
        let (r, _) = turn(&b, &mut s, "Ana@Example.org");
        assert_eq!(texts(&r), ["Billing or other?"]);
        let (r, _) = turn(&b, &mut s, "1");
        assert_eq!(
            texts(&r),
            ["Billing will mail ana@example.org.", "Bye ana@example.org!"]
        );
        assert!(s.done);
        let (r, o) = turn(&b, &mut s, "what are the opening hours");
        assert_eq!((texts(&r), o), (vec!["9 to 5."], Outcome::Answered));
    }

    #[test]
    fn the_lookup_step_answers_or_suggests() {
        let b = bot(SUPPORT);
        let mut s = ConversationState::default();
        begin(&b, &mut s);
        turn(&b, &mut s, "a@b.co");
        turn(&b, &mut s, "other");
        let (r, o) = turn(&b, &mut s, "password reset please");
        assert_eq!(
            (texts(&r), o),
            (
                vec!["Use the reset link.", "Bye a@b.co!"],
                Outcome::Answered
            )
        );
        let mut s = ConversationState::default();
        begin(&b, &mut s);
        turn(&b, &mut s, "a@b.co");
        turn(&b, &mut s, "other");
        let (r, o) = turn(
            &b,
            &mut s,
            "opening of my password vault for reset elephants",
        );
        assert_eq!(o, Outcome::Unsure);
        assert_eq!(r[0].text, "Sorry, I do not know that.");
        assert!(!r[0].suggestions.is_empty());
    }

    #[test]
    fn retries_run_out_to_the_fallback() {
        let b = bot(SUPPORT);
        let mut s = ConversationState::default();
        begin(&b, &mut s);
        turn(&b, &mut s, "x");
        let (r, o) = turn(&b, &mut s, "y");
        assert_eq!(
            (texts(&r), o),
            (vec!["Sorry, I do not know that."], Outcome::Unsure)
        );
        assert!(s.done);
    }

    #[test]
    fn a_loop_that_never_asks_stops_at_the_limit() {
        let b = bot(
            "slug: loop\nwelcome: hi\nfallback: stuck\nflow:\n  max_steps_per_turn: 7\n  steps:\n    - id: a\n      say: again\n      next: a\n",
        );
        let mut s = ConversationState::default();
        let (r, o) = begin(&b, &mut s);
        assert_eq!(o, Outcome::StepLimit);
        assert_eq!(r.len(), 1 + 7 + 1);
        assert_eq!(r.last().map(|r| r.text.as_str()), Some("stuck"));
        assert!(s.done);
    }

    #[test]
    fn a_bot_without_flow_answers_from_the_faq() {
        let mut d: BotDefinition = crate::bots::parse_definition(SUPPORT).unwrap();
        d.flow = None;
        let b = Bot::compile(d).unwrap();
        let mut s = ConversationState::default();
        assert_eq!(texts(&begin(&b, &mut s).0), ["Hello!"]);
        assert_eq!(
            texts(&turn(&b, &mut s, "reset password").0),
            ["Use the reset link."]
        );
    }

    proptest::proptest! {
        #[test]
        fn every_message_gets_a_reply(messages in proptest::collection::vec(".{0,60}", 1..8)) {
            let b = bot(SUPPORT);
            let mut s = ConversationState::default();
            begin(&b, &mut s);
            for m in &messages {
                let (r, _) = turn(&b, &mut s, m);
                proptest::prop_assert!(!r.is_empty(), "no reply to {m:?}");
            }
        }
    }
}
