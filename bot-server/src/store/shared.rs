//! Sessions and fixed-window counters in the database, for replicas that share no cache:
//! each call is one statement (one round trip), atomic in the database, so replicas
//! never race (no read-then-write), and rows past their time are invisible to reads
//! and removed by [`Store::sweep_shared`] in small batches.

use sqlx::Row as _;

use super::{Store, StoreError, q};

/// Rows removed per sweep statement: small enough never to hold locks for long.
const SWEEP_BATCH: i64 = 1000;

impl Store {
    /// Stores a session (by the hash of its id) until `expires_at` (unix ms).
    pub async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO shared_sessions (id_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(q("creating a session"))
    }

    /// The user of a live session, extended to `expires_at`; `None` when it has expired
    /// (at `now`) or was ended.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "UPDATE shared_sessions SET expires_at = $2 WHERE id_hash = $1 AND expires_at > $3 RETURNING user_id",
        )
        .bind(id_hash)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("reading a session"))?;
        row.map(|r| r.try_get("user_id"))
            .transpose()
            .map_err(q("reading a session"))
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM shared_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(q("ending a session"))
    }

    /// Adds one to the counter `key` in its window, starting a new window of
    /// `window_ms` when the last one ended (at `now`); returns the count and the end of
    /// the window (unix ms).
    pub async fn hit_counter(
        &self,
        key: &str,
        window_ms: i64,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "INSERT INTO shared_counters (key, count, window_end) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN shared_counters.window_end <= $3 THEN 1 ELSE shared_counters.count + 1 END, \
             window_end = CASE WHEN shared_counters.window_end <= $3 THEN $2 ELSE shared_counters.window_end END \
             RETURNING count, window_end",
        )
        .bind(key)
        .bind(now.saturating_add(window_ms))
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(q("counting"))?;
        Ok((
            row.try_get("count").map_err(q("counting"))?,
            row.try_get("window_end").map_err(q("counting"))?,
        ))
    }

    /// The count of `key` in its current window (0 when none is open at `now`).
    pub async fn read_counter(&self, key: &str, now: i64) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT count FROM shared_counters WHERE key = $1 AND window_end > $2")
                .bind(key)
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("reading a counter"))?;
        row.map_or(Ok(0), |r| r.try_get("count"))
            .map_err(q("reading a counter"))
    }

    /// Removes up to one batch of expired sessions and counters (at `now`); returns how
    /// many rows went. Called until it returns less than a full batch.
    pub async fn sweep_shared(&self, now: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for sql in [
            "DELETE FROM shared_sessions WHERE id_hash IN (SELECT id_hash FROM shared_sessions WHERE expires_at <= $1 LIMIT $2)",
            "DELETE FROM shared_counters WHERE key IN (SELECT key FROM shared_counters WHERE window_end <= $1 LIMIT $2)",
        ] {
            removed += sqlx::query(sql)
                .bind(now)
                .bind(SWEEP_BATCH)
                .execute(&self.pool)
                .await
                .map_err(q("sweeping expired shared state"))?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Rows per sweep statement.
    pub fn sweep_batch() -> u64 {
        SWEEP_BATCH.unsigned_abs()
    }
}
