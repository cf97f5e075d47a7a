//! The committed CRD is the one the code generates, and the example resources fit its
//! schema and its CEL rules; the invalid fixtures are refused with a useful message.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use generalbot_operator::render::{crd_yaml, parse};
use generalbot_operator::validate::check_cel;
use generalbot_tests::{root, run, skip, which};

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

fn invalid_fixtures() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root().join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn schema_check(files: &[std::path::PathBuf]) -> Option<(bool, String)> {
    let Some(python) = which("python3") else {
        skip("schema check", "python3 is not installed");
        return None;
    };
    let (has_jsonschema, _) = run(Command::new(&python).args(["-c", "import jsonschema, yaml"]));
    if !has_jsonschema {
        skip(
            "schema check",
            "the Python packages jsonschema and PyYAML are not installed (pip install jsonschema pyyaml)",
        );
        return None;
    }
    Some(run(Command::new(python)
        .arg(root().join("tests/scripts/validate_cr.py"))
        .arg(root().join("crds/generalbot.yaml"))
        .args(files)))
}

#[test]
fn examples_fit_the_crd_schema_strictly() {
    if let Some((ok, out)) = schema_check(&examples()) {
        assert!(ok, "{out}");
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

#[test]
fn invalid_fixtures_are_refused_by_schema_or_cel() {
    for file in invalid_fixtures() {
        let text = std::fs::read_to_string(&file).unwrap();
        let cel = parse(&file, &text, None)
            .map(|gb| check_cel(&gb))
            .unwrap_or_default();
        let schema = schema_check(std::slice::from_ref(&file));
        let refused_by_schema = schema.as_ref().is_some_and(|(ok, _)| !ok);
        let refused_by_cel = !cel.is_empty();
        if schema.is_none() && !refused_by_cel {
            continue; // only the schema would refuse it, and the schema check skipped
        }
        assert!(refused_by_schema || refused_by_cel, "{file:?} was accepted");
        for p in &cel {
            assert!(p.message.contains(' '), "CEL message says what to fix: {p}");
        }
    }
}
