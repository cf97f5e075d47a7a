//! Bot definitions: stored as JSON with where they came from (`api` or `directory`) and
//! a version (`updated_at`) every replica compares before it uses its compiled copy.

use sqlx::Row as _;

use super::{Store, StoreError, q};

/// A version: unix microseconds (an update also makes it at least one more than before).
fn now() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// One stored bot.
#[derive(Debug, Clone)]
pub struct BotRow {
    /// Its slug.
    pub slug: String,
    /// Its definition (JSON).
    pub definition: String,
    /// `api` or `directory`.
    pub source: String,
    /// Its version (unix microseconds of the last change, always increasing).
    pub updated_at: i64,
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<BotRow, sqlx::Error> {
    Ok(BotRow {
        slug: r.try_get("slug")?,
        definition: r.try_get("definition")?,
        source: r.try_get("source")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Where a bot came from.
pub const SOURCE_API: &str = "api";
/// A bot from the mounted directory (changed only by changing the directory).
pub const SOURCE_DIRECTORY: &str = "directory";

impl Store {
    /// Creates a bot through the API; `Conflict` when the slug is taken.
    pub async fn insert_bot(&self, slug: &str, definition: &str) -> Result<(), StoreError> {
        let t = now();
        let done = sqlx::query(
            "INSERT INTO bots (slug, definition, source, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (slug) DO NOTHING",
        )
        .bind(slug)
        .bind(definition)
        .bind(SOURCE_API)
        .bind(t)
        .execute(&self.pool)
        .await
        .map_err(q("creating a bot"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                what: "a bot with this slug",
            });
        }
        Ok(())
    }

    /// Replaces an API bot's definition; false when there is no such API bot.
    pub async fn update_bot(&self, slug: &str, definition: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE bots SET definition = $1, updated_at = CASE WHEN $2 > updated_at THEN $2 ELSE updated_at + 1 END WHERE slug = $3 AND source = $4",
        )
        .bind(definition)
        .bind(now())
        .bind(slug)
        .bind(SOURCE_API)
        .execute(&self.pool)
        .await
        .map_err(q("updating a bot"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes an API bot; false when there is no such API bot.
    pub async fn delete_bot(&self, slug: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM bots WHERE slug = $1 AND source = $2")
            .bind(slug)
            .bind(SOURCE_API)
            .execute(&self.pool)
            .await
            .map_err(q("deleting a bot"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes the stored directory bots what the directory holds: writes only a bot that
    /// changed (so replicas starting together write nothing twice) and deletes directory
    /// bots no longer there. Returns (written, deleted).
    pub async fn sync_directory_bots(
        &self,
        bots: &[(String, String)],
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(q("syncing directory bots"))?;
        let mut written = 0;
        let t = now();
        for (slug, definition) in bots {
            let done = sqlx::query(
                "INSERT INTO bots (slug, definition, source, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (slug) DO UPDATE SET definition = excluded.definition, source = excluded.source, \
                 updated_at = CASE WHEN excluded.updated_at > bots.updated_at THEN excluded.updated_at ELSE bots.updated_at + 1 END \
                 WHERE bots.definition <> excluded.definition OR bots.source <> excluded.source",
            )
            .bind(slug)
            .bind(definition)
            .bind(SOURCE_DIRECTORY)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(q("syncing directory bots"))?;
            written += done.rows_affected();
        }
        let rows = sqlx::query("SELECT slug FROM bots WHERE source = $1")
            .bind(SOURCE_DIRECTORY)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("syncing directory bots"))?;
        let mut deleted = 0;
        for r in rows {
            let slug: String = r.try_get("slug").map_err(q("syncing directory bots"))?;
            if !bots.iter().any(|(s, _)| *s == slug) {
                deleted += sqlx::query("DELETE FROM bots WHERE slug = $1 AND source = $2")
                    .bind(&slug)
                    .bind(SOURCE_DIRECTORY)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("syncing directory bots"))?
                    .rows_affected();
            }
        }
        tx.commit().await.map_err(q("syncing directory bots"))?;
        Ok((written, deleted))
    }

    /// A bot's version, if it exists.
    pub async fn bot_version(&self, slug: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT updated_at FROM bots WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("reading a bot"))?;
        row.map(|r| r.try_get("updated_at"))
            .transpose()
            .map_err(q("reading a bot"))
    }

    /// A bot, if it exists.
    pub async fn bot(&self, slug: &str) -> Result<Option<BotRow>, StoreError> {
        let row =
            sqlx::query("SELECT slug, definition, source, updated_at FROM bots WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("reading a bot"))?;
        row.as_ref()
            .map(row_of)
            .transpose()
            .map_err(q("reading a bot"))
    }

    /// Every bot, by slug.
    pub async fn bots(&self) -> Result<Vec<BotRow>, StoreError> {
        let rows =
            sqlx::query("SELECT slug, definition, source, updated_at FROM bots ORDER BY slug")
                .fetch_all(&self.pool)
                .await
                .map_err(q("listing bots"))?;
        rows.iter()
            .map(row_of)
            .collect::<Result<_, _>>()
            .map_err(q("listing bots"))
    }
}
