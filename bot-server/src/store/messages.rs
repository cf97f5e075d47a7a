//! Conversations and their encrypted messages, each read and written as its owner
//! under row-level security.

use sqlx::Row as _;

use super::{Store, StoreError, now, q};

/// One message as stored.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Id.
    pub id: String,
    /// Encrypted text.
    pub body_enc: String,
    /// Unix microseconds (fine enough to keep a conversation in order).
    pub created_at: i64,
}

impl Store {
    /// Creates a conversation of a user.
    pub async fn insert_conversation(&self, user_id: &str, id: &str) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        sqlx::query("INSERT INTO conversations (id, user_id, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(user_id)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(q("creating a conversation"))?;
        tx.commit().await.map_err(q("creating a conversation"))
    }

    /// Whether a conversation belongs to a user.
    pub async fn owns_conversation(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.as_user(user_id).await?;
        let row = sqlx::query("SELECT user_id FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("reading a conversation"))?;
        tx.commit().await.map_err(q("reading a conversation"))?;
        Ok(row.is_some())
    }

    /// Appends a message (already encrypted).
    pub async fn insert_message(
        &self,
        user_id: &str,
        conversation_id: &str,
        id: &str,
        body_enc: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        sqlx::query("INSERT INTO messages (id, conversation_id, user_id, body_enc, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(conversation_id)
            .bind(user_id)
            .bind(body_enc)
            .bind(jiff::Timestamp::now().as_microsecond())
            .execute(&mut *tx)
            .await
            .map_err(q("storing a message"))?;
        tx.commit().await.map_err(q("storing a message"))
    }

    /// The messages of a conversation, as visible to `user_id`.
    pub async fn messages(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut tx = self.as_user(user_id).await?;
        let rows = sqlx::query("SELECT id, body_enc, created_at FROM messages WHERE conversation_id = $1 AND user_id = $2 ORDER BY created_at, id")
            .bind(conversation_id)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(q("reading messages"))?;
        tx.commit().await.map_err(q("reading messages"))?;
        rows.iter()
            .map(|r| {
                Ok(MessageRow {
                    id: r.try_get("id")?,
                    body_enc: r.try_get("body_enc")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading messages"))
    }
}
