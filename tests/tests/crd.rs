//! The committed CRD is the one the code generates, and the example resources fit its
//! schema and its CEL rules; every GeneralBot of the invalid corpus is refused by `render`
//! naming its field; and `render` never disagrees with the schema plus the CEL rules on
//! mutations of the examples.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

use generalbot_operator::render::{RenderError, crd_yaml, objects, parse};
use generalbot_operator::schema;
use generalbot_operator::validate::{check_cel, check_spec};
use generalbot_tests::{corpus, note, operator, root};
use proptest::prelude::*;
use serde_json::{Value, json};

#[test]
fn committed_crd_is_current() {
    let generated = crd_yaml().unwrap();
    for file in [
        "crds/generalbot.yaml",
        "charts/generalbot-operator/crds/generalbot.yaml",
    ] {
        let committed = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(
            committed == generated,
            "{file} is stale: regenerate it with\n  cargo run -p generalbot-operator -- crd | tee crds/generalbot.yaml > charts/generalbot-operator/crds/generalbot.yaml"
        );
    }
}

fn examples() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "a minimal and a full example");
    files
}

#[test]
fn examples_fit_the_crd_schema_strictly() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(schema::check(&schema::normalized(doc)), [], "{file:?}");
    }
}

#[test]
fn examples_pass_the_cel_rules() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        let gb = parse(&file, &text, None).unwrap();
        assert_eq!(check_cel(&gb), [], "{file:?}");
    }
}

/// `render` on a file: exit status 2 with one `  - field: message` line per problem.
fn render_refusal(file: &Path) -> Vec<(String, String)> {
    let out = operator(&["render", "-f", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{file:?} was not refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "{file:?}: nothing half-rendered");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .filter_map(|l| l.split_once(": "))
        .map(|(f, m)| (f.to_owned(), m.to_owned()))
        .collect()
}

#[test]
fn render_refuses_every_invalid_generalbot_naming_its_field() {
    let cases = corpus::cases();
    assert!(cases.len() >= 60, "the corpus holds {} cases", cases.len());
    for case in &cases {
        let problems = render_refusal(&case.path);
        assert!(
            problems.iter().any(|(f, _)| corpus::names(f, &case.field)),
            "{:?} must be refused naming {}: {problems:?}",
            case.path,
            case.field
        );
        for (field, message) in &problems {
            assert!(
                message.len() > 10 && !message.contains("Error"),
                "{field}: the message says what to fix: {message}"
            );
        }
    }
    let by_api = cases.iter().filter(|c| c.api_server_refuses).count();
    note(&format!(
        "invalid corpus: render refused {} of {} (the API server is expected to refuse {by_api}, the operator the other {})",
        cases.len(),
        cases.len(),
        cases.len() - by_api
    ));
}

/// Every path to a value in `doc`, as a list of keys and indexes.
fn leaf_paths(doc: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                at.push(Value::String(k.clone()));
                out.push(at.clone());
                leaf_paths(v, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Value::from(i));
                out.push(at.clone());
                leaf_paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(doc: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |cur, key| match key {
        Value::String(k) => cur.get_mut(k.as_str()),
        Value::Number(i) => cur.get_mut(usize::try_from(i.as_u64()?).ok()?),
        _ => None,
    })
}

/// The values a mutation puts in place: each kind of JSON, edge numbers, and strings
/// that break the usual patterns.
fn replacement() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None), // remove the member (or item)
        Just(Some(Value::Null)),
        Just(Some(json!(0))),
        Just(Some(json!(-1))),
        Just(Some(json!(1))),
        Just(Some(json!(65536))),
        Just(Some(json!(2_147_483_648_i64))),
        Just(Some(json!(1.5))),
        Just(Some(json!(true))),
        Just(Some(json!(""))),
        Just(Some(json!("x"))),
        Just(Some(json!("has space"))),
        Just(Some(json!("0.0.0.0/0"))),
        Just(Some(json!("http://example.com"))),
        Just(Some(json!("*"))),
        Just(Some(json!("Upper_Case"))),
        Just(Some(json!("a".repeat(300)))),
        Just(Some(json!([]))),
        Just(Some(json!(["x"]))),
        Just(Some(json!({}))),
        Just(Some(json!({"unknownField": 1}))),
    ]
}

fn base_docs() -> Vec<Value> {
    examples()
        .iter()
        .map(|f| serde_saphyr::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
        .collect()
}

proptest! {
    // 128 cases by default; PROPTEST_CASES=N for a longer search.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
    ))]

    /// Whatever a mutation of an example is, `render` and the schema plus the CEL rules
    /// give the same verdict: what they accept renders (no decoding or build error), and
    /// what they refuse, `render` refuses naming the same fields.
    #[test]
    fn render_and_the_schema_never_disagree(
        base in 0usize..2,
        pick in any::<prop::sample::Index>(),
        value in replacement(),
    ) {
        let mut doc = base_docs().swap_remove(base);
        let mut paths = Vec::new();
        leaf_paths(&doc, &mut Vec::new(), &mut paths);
        let path = pick.get(&paths).clone();
        let (parent, last) = path.split_at(path.len() - 1);
        let target = at_path(&mut doc, parent).unwrap();
        match (value, &last[0], target) {
            (None, Value::String(k), Value::Object(map)) => { map.remove(k.as_str()); }
            (None, Value::Number(i), Value::Array(items)) => { items.remove(i.as_u64().unwrap() as usize); }
            (Some(v), key, target) => { *at_path(target, std::slice::from_ref(key)).unwrap() = v; }
            _ => unreachable!(),
        }
        let text = serde_saphyr::to_string(&doc).unwrap();

        let normalized = schema::normalized(doc.clone());
        let mut expected: BTreeSet<String> = schema::check(&normalized)
            .into_iter()
            .map(|p| p.field)
            .collect();
        if expected.is_empty() {
            let gb: generalbot_crds::GeneralBot = serde_json::from_value(normalized)
                .map_err(|e| TestCaseError::fail(format!("the schema accepts what does not decode: {e}\n{text}")))?;
            expected.extend(check_spec(&gb).into_iter().map(|p| p.field));
        }

        let file = Path::new("mutated.yaml");
        let rendered = parse(file, &text, Some("bots")).and_then(|gb| objects(&gb));
        match rendered {
            Ok(_) => prop_assert!(expected.is_empty(), "render accepted what the schema or CEL refuse: {expected:?}\n{text}"),
            Err(RenderError::Invalid(problems)) => {
                let got: BTreeSet<String> = problems.into_iter().map(|p| p.field).collect();
                prop_assert_eq!(got, expected, "{}", text);
            }
            Err(other) => prop_assert!(false, "render failed otherwise: {other}\n{text}"),
        }
    }
}
