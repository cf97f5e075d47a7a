//! Bots loaded from a mounted directory (`BOTSERVER_BOTS_DIR`; the operator mounts the
//! ConfigMaps named in `spec.bots` there, read-only). Every `*.yaml`, `*.yml` or `*.json`
//! file is one bot; its `faq_csv` names a CSV file beside it. One bad file stops the
//! server with the file and the line, so a broken ConfigMap never half-applies.

use std::path::{Path, PathBuf};

use super::{Bot, BotDefinition, BotError, faq};

/// The largest file read.
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// Why the directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The directory or a file cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bot in a file is invalid.
    #[error("bot file {file}: {source}")]
    Bot {
        /// The file name.
        file: String,
        /// Why.
        #[source]
        source: BotError,
    },
    /// A rule of the directory.
    #[error("bot file {file}: {reason}")]
    Rule {
        /// The file name.
        file: String,
        /// What to fix.
        reason: String,
    },
}

fn read(path: &Path) -> Result<String, DirError> {
    let io = |source| DirError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE {
        return Err(io(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes"
        ))));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Reads and checks every bot of a directory (the CSV knowledge bases merged in), by
/// file name.
pub fn load(dir: &Path) -> Result<Vec<BotDefinition>, DirError> {
    let io = |source| DirError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    names.sort();
    let mut bots: Vec<BotDefinition> = Vec::new();
    for name in names {
        // A ConfigMap volume holds `..data` and timestamped directories: skip hidden names.
        if name.starts_with('.')
            || !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        {
            continue;
        }
        let bot_err = |source| DirError::Bot {
            file: name.clone(),
            source,
        };
        let mut def = super::parse_definition(&read(&dir.join(&name))?).map_err(bot_err)?;
        if let Some(csv) = def.faq_csv.take() {
            if csv.contains(['/', '\\']) || csv.starts_with('.') || !csv.ends_with(".csv") {
                return Err(DirError::Rule {
                    file: name,
                    reason: format!("faq_csv {csv:?} must be the name of a .csv file beside it"),
                });
            }
            let entries = faq::parse_csv(&read(&dir.join(&csv))?).map_err(|e| DirError::Bot {
                file: format!("{name} ({csv})"),
                source: BotError::Faq(e),
            })?;
            def.faq.extend(entries);
        }
        Bot::compile(def.clone()).map_err(bot_err)?;
        if let Some(other) = bots.iter().find(|b| b.slug == def.slug) {
            return Err(DirError::Rule {
                file: name,
                reason: format!("another file already defines the bot {:?}", other.slug),
            });
        }
        bots.push(def);
    }
    Ok(bots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gb-bots-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(d.join("..data")).unwrap();
        for (n, c) in files {
            std::fs::write(d.join(n), c).unwrap();
        }
        d
    }

    #[test]
    fn loads_bots_with_their_csv() {
        let d = dir(&[
            (
                "a.yaml",
                "slug: a\nwelcome: hi\nfallback: no\nfaq_csv: a.csv\n",
            ),
            ("a.csv", "question,answer\nOpen?,Yes.\n"),
            (
                "b.json",
                r#"{"slug": "b", "welcome": "hi", "fallback": "no"}"#,
            ),
            ("README.txt", "ignored"),
        ]);
        let bots = load(&d).unwrap();
        assert_eq!(bots.len(), 2);
        assert_eq!(bots[0].faq.len(), 1);
        assert!(bots[0].faq_csv.is_none());
    }

    #[test]
    fn refusals_name_the_file_and_line() {
        let d = dir(&[
            (
                "a.yaml",
                "slug: a\nwelcome: hi\nfallback: no\nfaq_csv: a.csv\n",
            ),
            ("a.csv", "question,answer\nOpen?,Yes.\n,No\n"),
        ]);
        assert_eq!(
            load(&d).unwrap_err().to_string(),
            "bot file a.yaml (a.csv): FAQ CSV line 3: the question is empty"
        );
        let d = dir(&[(
            "a.yaml",
            "slug: a\nwelcome: hi\nfallback: no\nfaq_csv: ../x.csv\n",
        )]);
        assert!(load(&d).unwrap_err().to_string().contains("beside it"));
        let d = dir(&[
            ("a.yaml", "slug: a\nwelcome: hi\nfallback: no\n"),
            ("b.yaml", "slug: a\nwelcome: hi\nfallback: no\n"),
        ]);
        assert!(
            load(&d)
                .unwrap_err()
                .to_string()
                .starts_with("bot file b.yaml: another file")
        );
    }
}
