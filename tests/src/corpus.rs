//! The corpus of invalid GeneralBots under `tests/invalid/`: each file says, in its
//! header, the field its refusal must name (`# field: spec.server.replicas`) and who
//! refuses it (`# refused-by: render, api-server`, or `render, operator` for what the
//! API server cannot check and the operator refuses at reconcile, applying nothing).

use std::path::PathBuf;

use crate::root;

/// One invalid GeneralBot.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// The field every refusal must name.
    pub field: String,
    /// Whether the API server refuses it (otherwise the operator does, at reconcile).
    pub api_server_refuses: bool,
}

/// Every case, in file order.
pub fn cases() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let header = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .unwrap_or_else(|| panic!("{path:?} has no `# {key}:` line"))
                    .trim()
                    .to_owned()
            };
            let field = header("field");
            let refused_by = header("refused-by");
            Case {
                api_server_refuses: refused_by.contains("api-server"),
                field,
                path,
                text,
            }
        })
        .collect()
}

/// Whether `named` (a field path a refusal gave) names `field` or a part of it.
pub fn names(named: &str, field: &str) -> bool {
    let named = named.trim_start_matches('.');
    named == field
        || named
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}
