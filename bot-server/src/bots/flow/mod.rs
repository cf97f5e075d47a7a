//! Conversation flows: a state machine written in YAML or JSON, checked as a whole before
//! it is accepted (every step named once, every jump to a step that exists, every
//! variable set somewhere before it is used) and compiled to indices. Running a flow is
//! in [`super::run`].
//!
//! ```yaml
//! start: greet                 # optional: the first step by default
//! max_steps_per_turn: 25       # optional: stops a loop that never asks
//! steps:
//!   - id: greet
//!     say: "Hello! I can help with orders."
//!   - id: topic
//!     ask: "Billing or shipping?"
//!     expect: choice           # text, email, number or choice
//!     choices: [billing, shipping]
//!     save_as: topic
//!     retries: 2               # re-asks before on_fail (or the fallback and the end)
//!   - id: route
//!     branch:
//!       - when: { var: topic, equals: billing }
//!         goto: billing
//!     otherwise: answer
//!   - id: billing
//!     set: { team: billing }
//!   - id: answer
//!     lookup: "{topic}"        # the knowledge base, asked this (the last input by default)
//!   - id: done
//!     end: "Thanks!"
//! ```

mod definition;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use definition::{
    ArmDefinition, Condition, EndDefinition, Expect, FlowDefinition, StepDefinition,
};
pub use template::Template;
use template::valid_name;

/// The default and the largest step limit per turn.
pub const DEFAULT_STEP_LIMIT: u16 = 25;
/// The largest step limit a flow may ask for.
pub const MAX_STEP_LIMIT: u16 = 200;
/// The most steps in one flow.
pub const MAX_STEPS: usize = 500;
/// The default number of re-asks after an invalid answer.
pub const DEFAULT_RETRIES: u8 = 2;
/// The longest answer an `ask` step saves.
pub const MAX_SAVED_ANSWER: usize = 1_000;
/// The variable holding the last thing the person said.
pub const INPUT_VAR: &str = "input";

/// Why a flow was refused: always names the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// A rule of one step.
    #[error("flow step {index} ({id:?}): {reason}")]
    Step {
        /// 1-based position.
        index: usize,
        /// Its id.
        id: String,
        /// What to fix.
        reason: String,
    },
    /// A rule of the whole flow.
    #[error("flow: {0}")]
    Flow(String),
}

/// A compiled step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its id.
    pub id: String,
    /// What it does.
    pub action: Action,
    /// The step after it, if any.
    pub next: Option<usize>,
}

/// What a compiled step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Says a message.
    Say(Template),
    /// Asks and waits.
    Ask {
        /// The question.
        prompt: Template,
        /// What an answer must be.
        expect: Expect,
        /// The accepted answers of a choice.
        choices: Vec<String>,
        /// Where the answer goes.
        save_as: Option<String>,
        /// Re-asks allowed.
        retries: u8,
        /// Where to go when they run out.
        on_fail: Option<usize>,
    },
    /// Jumps to the first arm that holds.
    Branch {
        /// Conditions and targets.
        arms: Vec<(Condition, usize)>,
        /// Where to go otherwise (`next` when absent).
        otherwise: Option<usize>,
    },
    /// Sets variables.
    Set(Vec<(String, Template)>),
    /// Answers from the knowledge base.
    Lookup {
        /// The question asked of it.
        query: Template,
        /// Where to go without a confident answer.
        on_miss: Option<usize>,
    },
    /// Jumps.
    Goto(usize),
    /// Ends, maybe with a message.
    End(Option<Template>),
}

/// A flow ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The steps.
    pub steps: Vec<Step>,
    /// The first step.
    pub start: usize,
    /// The most steps one message may run.
    pub step_limit: u16,
}

impl Flow {
    /// The position of a step.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }
}

/// Checks and compiles a flow.
pub fn compile(def: &FlowDefinition) -> Result<Flow, FlowError> {
    if def.steps.is_empty() {
        return Err(FlowError::Flow("it has no steps".into()));
    }
    if def.steps.len() > MAX_STEPS {
        return Err(FlowError::Flow(format!(
            "it has {} steps; at most {MAX_STEPS} are allowed",
            def.steps.len()
        )));
    }
    let step_limit = def.max_steps_per_turn.unwrap_or(DEFAULT_STEP_LIMIT);
    if !(1..=MAX_STEP_LIMIT).contains(&step_limit) {
        return Err(FlowError::Flow(format!(
            "max_steps_per_turn is {step_limit}; it must be between 1 and {MAX_STEP_LIMIT}"
        )));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in def.steps.iter().enumerate() {
        let err = |reason: String| FlowError::Step {
            index: i + 1,
            id: s.id.clone(),
            reason,
        };
        if !valid_name(&s.id) {
            return Err(err(
                "the id must be lowercase letters, digits and _ (at most 64)".into(),
            ));
        }
        if index.insert(s.id.as_str(), i).is_some() {
            return Err(err("another step has this id".into()));
        }
    }
    let start = match &def.start {
        None => 0,
        Some(id) => *index
            .get(id.as_str())
            .ok_or_else(|| FlowError::Flow(format!("start names {id:?}, which is not a step")))?,
    };
    let mut steps = Vec::with_capacity(def.steps.len());
    let mut set_vars: BTreeSet<&str> = BTreeSet::from([INPUT_VAR]);
    for s in &def.steps {
        if let Some(v) = &s.save_as {
            set_vars.insert(v);
        }
        for k in s.set.iter().flat_map(BTreeMap::keys) {
            set_vars.insert(k);
        }
    }
    for (i, s) in def.steps.iter().enumerate() {
        let err = |reason: String| FlowError::Step {
            index: i + 1,
            id: s.id.clone(),
            reason,
        };
        let step = compile_step(s, i, &index, def.steps.len()).map_err(err)?;
        let used = used_vars(&step.action);
        if let Some(v) = used.iter().find(|v| !set_vars.contains(v.as_str())) {
            return Err(err(format!(
                "it uses the variable {v:?}, which no step sets (save_as or set)"
            )));
        }
        steps.push(step);
    }
    Ok(Flow {
        steps,
        start,
        step_limit,
    })
}

fn used_vars(action: &Action) -> Vec<String> {
    let of = |t: &Template| t.vars().map(str::to_owned).collect::<Vec<_>>();
    match action {
        Action::Say(t) | Action::Ask { prompt: t, .. } | Action::Lookup { query: t, .. } => of(t),
        Action::End(t) => t.as_ref().map(of).unwrap_or_default(),
        Action::Set(pairs) => pairs.iter().flat_map(|(_, t)| of(t)).collect(),
        Action::Branch { arms, .. } => arms.iter().map(|(c, _)| c.var.clone()).collect(),
        Action::Goto(_) => Vec::new(),
    }
}

fn compile_step(
    s: &StepDefinition,
    i: usize,
    index: &HashMap<&str, usize>,
    count: usize,
) -> Result<Step, String> {
    let target = |field: &str, id: &String| {
        index
            .get(id.as_str())
            .copied()
            .ok_or_else(|| format!("{field} names {id:?}, which is not a step"))
    };
    let template = |field: &str, t: &str| Template::parse(t).map_err(|e| format!("{field}: {e}"));
    let actions = [
        ("say", s.say.is_some()),
        ("ask", s.ask.is_some()),
        ("branch", s.branch.is_some()),
        ("set", s.set.is_some()),
        ("lookup", s.lookup.is_some()),
        ("goto", s.goto.is_some()),
        ("end", s.end.is_some()),
    ];
    let named: Vec<&str> = actions.iter().filter(|a| a.1).map(|a| a.0).collect();
    let [kind] = named.as_slice() else {
        return Err(format!(
            "a step does exactly one of say, ask, branch, set, lookup, goto or end; this one {}",
            if named.is_empty() {
                "does none".to_owned()
            } else {
                format!("does {}", named.join(", "))
            }
        ));
    };
    let only_for = |field: &str, present: bool, owner: &str| {
        if present && *kind != owner {
            Err(format!("{field} belongs to {owner} steps, not {kind}"))
        } else {
            Ok(())
        }
    };
    only_for("expect", s.expect.is_some(), "ask")?;
    only_for("choices", s.choices.is_some(), "ask")?;
    only_for("save_as", s.save_as.is_some(), "ask")?;
    only_for("retries", s.retries.is_some(), "ask")?;
    only_for("on_fail", s.on_fail.is_some(), "ask")?;
    only_for("otherwise", s.otherwise.is_some(), "branch")?;
    only_for("on_miss", s.on_miss.is_some(), "lookup")?;
    if s.next.is_some() && matches!(*kind, "goto" | "end") {
        return Err(format!("a {kind} step has no next"));
    }
    let next = match &s.next {
        Some(id) => Some(target("next", id)?),
        None => (i + 1 < count).then_some(i + 1),
    };
    let action = match *kind {
        "say" => Action::Say(template("say", s.say.as_deref().unwrap_or_default())?),
        "ask" => {
            let expect = s.expect.unwrap_or(Expect::Text);
            let choices = s.choices.clone().unwrap_or_default();
            if (expect == Expect::Choice) == choices.is_empty() {
                return Err("choices are given exactly when expect is choice".into());
            }
            if let Some(v) = &s.save_as
                && (!valid_name(v) || v == INPUT_VAR)
            {
                return Err(format!(
                    "save_as {v:?} must be lowercase letters, digits and _, and not {INPUT_VAR:?}"
                ));
            }
            let retries = s.retries.unwrap_or(DEFAULT_RETRIES);
            if retries > 10 {
                return Err(format!("retries is {retries}; at most 10"));
            }
            Action::Ask {
                prompt: template("ask", s.ask.as_deref().unwrap_or_default())?,
                expect,
                choices,
                save_as: s.save_as.clone(),
                retries,
                on_fail: s
                    .on_fail
                    .as_ref()
                    .map(|t| target("on_fail", t))
                    .transpose()?,
            }
        }
        "branch" => {
            let arms = s.branch.as_deref().unwrap_or_default();
            if arms.is_empty() {
                return Err("a branch needs at least one arm".into());
            }
            let mut compiled = Vec::with_capacity(arms.len());
            for (n, arm) in arms.iter().enumerate() {
                let c = &arm.when;
                let tests = [c.equals.is_some(), c.one_of.is_some(), c.present.is_some()];
                if tests.iter().filter(|t| **t).count() != 1 {
                    return Err(format!(
                        "branch arm {}: a condition has exactly one of equals, one_of or present",
                        n + 1
                    ));
                }
                if !valid_name(&c.var) {
                    return Err(format!(
                        "branch arm {}: {:?} is not a variable",
                        n + 1,
                        c.var
                    ));
                }
                compiled.push((c.clone(), target("goto", &arm.goto)?));
            }
            Action::Branch {
                arms: compiled,
                otherwise: s
                    .otherwise
                    .as_ref()
                    .map(|t| target("otherwise", t))
                    .transpose()?,
            }
        }
        "set" => {
            let mut pairs = Vec::new();
            for (k, v) in s.set.iter().flatten() {
                if !valid_name(k) || k == INPUT_VAR {
                    return Err(format!("set: {k:?} is not a variable you may set"));
                }
                pairs.push((k.clone(), template("set", v)?));
            }
            Action::Set(pairs)
        }
        "lookup" => {
            let q = s.lookup.as_deref().unwrap_or_default();
            Action::Lookup {
                query: template("lookup", if q.trim().is_empty() { "{input}" } else { q })?,
                on_miss: s
                    .on_miss
                    .as_ref()
                    .map(|t| target("on_miss", t))
                    .transpose()?,
            }
        }
        "goto" => Action::Goto(target("goto", s.goto.as_ref().unwrap_or(&String::new()))?),
        _ => Action::End(match &s.end {
            Some(EndDefinition::Say(t)) => Some(template("end", t)?),
            Some(EndDefinition::Flag(true)) | None => None,
            Some(EndDefinition::Flag(false)) => {
                return Err("end: false ends nothing; remove the step or say end: true".into());
            }
        }),
    };
    Ok(Step {
        id: s.id.clone(),
        action,
        next,
    })
}

/// Reads a flow from YAML or JSON (for tools and the fuzz target).
pub fn parse(text: &str) -> Result<Flow, FlowError> {
    let def: FlowDefinition =
        serde_saphyr::from_str(text).map_err(|e| FlowError::Flow(e.to_string()))?;
    compile(&def)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render() {
        let t = Template::parse("Hi {name}, {{literal}} {input}").unwrap();
        let vars = BTreeMap::from([("name".to_owned(), "Ana".to_owned())]);
        assert_eq!(t.render(&vars), "Hi Ana, {literal} ");
        assert!(Template::parse("Hi {Name}").is_err());
        assert!(Template::parse("Hi }").is_err());
        assert!(Template::parse("Hi {name").is_err());
    }

    fn refusal(yaml: &str) -> String {
        parse(yaml).unwrap_err().to_string()
    }

    #[test]
    fn refusals_point_at_the_step() {
        assert_eq!(
            refusal("steps:\n  - id: a\n    say: hi\n  - id: b\n    say: x\n    ask: y\n"),
            "flow step 2 (\"b\"): a step does exactly one of say, ask, branch, set, lookup, goto or end; this one does say, ask"
        );
        assert_eq!(
            refusal("steps:\n  - id: a\n    goto: nowhere\n"),
            "flow step 1 (\"a\"): goto names \"nowhere\", which is not a step"
        );
        assert_eq!(
            refusal("steps:\n  - id: a\n    say: hi {who}\n"),
            "flow step 1 (\"a\"): it uses the variable \"who\", which no step sets (save_as or set)"
        );
        assert_eq!(
            refusal("steps:\n  - id: a\n    say: hi\n  - id: a\n    end: true\n"),
            "flow step 2 (\"a\"): another step has this id"
        );
        assert_eq!(
            refusal("steps:\n  - id: a\n    ask: pick\n    expect: choice\n"),
            "flow step 1 (\"a\"): choices are given exactly when expect is choice"
        );
        assert_eq!(
            refusal("steps:\n  - id: a\n    say: hi\n    save_as: x\n"),
            "flow step 1 (\"a\"): save_as belongs to ask steps, not say"
        );
        assert!(refusal("steps: []\n").contains("no steps"));
        let e = refusal("steps:\n  - id: a\n    sya: hi\n");
        assert!(e.contains("sya") && e.contains("line 3"), "{e}");
        let e = refusal("max_steps_per_turn: 0\nsteps:\n  - id: a\n    say: hi\n");
        assert!(e.contains("between 1 and"), "{e}");
    }

    #[test]
    fn steps_fall_through_unless_told() {
        let f = parse("steps:\n  - id: a\n    say: one\n  - id: b\n    say: two\n    next: a\n  - id: c\n    end: true\n").unwrap();
        assert_eq!(f.steps[0].next, Some(1));
        assert_eq!(f.steps[1].next, Some(0));
        assert_eq!(f.steps[2].next, None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in "(steps:\n(  - id: [a-c]\n(    (say|ask|goto|next|end|lookup|save_as|expect|on_fail): [a-c{}]{0,3}\n){0,3}){0,4})|.{0,200}") {
            let _ = parse(&input);
        }
    }
}
