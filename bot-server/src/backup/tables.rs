//! Which tables a backup holds, and the order they load in: every table of the schema
//! except the migration ledger (restore re-creates it by migrating) and the shared
//! sessions and counters (short-lived state of running replicas, never restored); a
//! table after every table it refers to.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row as _;

/// Tables never backed up.
pub const EXCLUDED: [&str; 3] = ["schema_migrations", "shared_sessions", "shared_counters"];

/// Orders `tables` so each comes after the tables it refers to (`refs`: table, referred
/// table). `Err` names a table in a reference cycle.
pub fn load_order(tables: &[String], refs: &[(String, String)]) -> Result<Vec<String>, String> {
    let wanted: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    let mut needs: BTreeMap<&str, BTreeSet<&str>> =
        wanted.iter().map(|t| (*t, BTreeSet::new())).collect();
    for (from, to) in refs {
        if from != to
            && wanted.contains(to.as_str())
            && let Some(n) = needs.get_mut(from.as_str())
        {
            n.insert(to.as_str());
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(tables.len());
    while !needs.is_empty() {
        let ready: Vec<&str> = needs
            .iter()
            .filter(|(_, n)| n.iter().all(|t| out.iter().any(|o| o == t)))
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            return Err(needs
                .keys()
                .next()
                .map(|t| (*t).to_owned())
                .unwrap_or_default());
        }
        for t in ready {
            needs.remove(t);
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

/// The backed-up tables of the connected database, in load order.
pub async fn in_order(conn: &mut sqlx::AnyConnection) -> Result<Vec<String>, sqlx::Error> {
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .filter_map(|r| r.try_get::<String, _>(0).ok())
    .filter(|t| !EXCLUDED.contains(&t.as_str()))
    .collect();
    let refs: Vec<(String, String)> = sqlx::query(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c \
         JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
    .collect();
    load_order(&tables, &refs).map_err(|t| {
        sqlx::Error::Protocol(format!(
            "table {t} is in a cycle of foreign keys; it cannot be loaded in order"
        ))
    })
}

/// A table name quoted as an SQL identifier (names come from the catalog, and a restore
/// only loads tables the target schema has; quoting is a second guard).
pub fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn referred_tables_load_first_and_cycles_are_named() {
        let tables = s(&[
            "messages",
            "conversations",
            "users",
            "refresh_tokens",
            "bots",
        ]);
        let refs = vec![
            ("messages".to_owned(), "conversations".to_owned()),
            ("refresh_tokens".to_owned(), "users".to_owned()),
            ("conversations".to_owned(), "users".to_owned()),
            ("users".to_owned(), "users".to_owned()),
        ];
        let order = load_order(&tables, &refs).unwrap();
        let at = |t: &str| order.iter().position(|o| o == t).unwrap();
        assert!(at("users") < at("conversations") && at("conversations") < at("messages"));
        assert!(at("users") < at("refresh_tokens"));
        assert_eq!(order.len(), 5);
        let cycle = vec![
            ("a".to_owned(), "b".to_owned()),
            ("b".to_owned(), "a".to_owned()),
        ];
        assert_eq!(load_order(&s(&["a", "b"]), &cycle), Err("a".to_owned()));
        assert_eq!(quoted("we\"ird"), "\"we\"\"ird\"");
    }
}
