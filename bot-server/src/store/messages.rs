//! Conversations and their encrypted messages, each read and written as its owner
//! under row-level security. A bot's turn (the person's message, the bot's replies and
//! the conversation's new state) is written in one transaction, only if the state is
//! still the one the turn started from.

use sqlx::Row as _;

use super::{Store, StoreError, now, q};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    /// The person.
    User,
    /// The bot.
    Bot,
}

impl Sender {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Bot => "bot",
        }
    }
}

/// One message as stored.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// Id.
    pub id: String,
    /// Encrypted text.
    pub body_enc: String,
    /// Unix microseconds (fine enough to keep a conversation in order).
    pub created_at: i64,
    /// Who said it.
    pub sender: Sender,
}

/// One conversation as stored.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    /// Id.
    pub id: String,
    /// The bot it talks to, if any.
    pub bot_slug: Option<String>,
    /// Where its flow stands (encrypted), if it talks to a bot.
    pub state_enc: Option<String>,
    /// Unix microseconds.
    pub created_at: i64,
}

/// A message to store (already encrypted).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its id (bound into the ciphertext).
    pub id: String,
    /// The encrypted text.
    pub body_enc: String,
    /// Who said it.
    pub sender: Sender,
}

fn conversation_of(r: &sqlx::any::AnyRow) -> Result<ConversationRow, sqlx::Error> {
    Ok(ConversationRow {
        id: r.try_get("id")?,
        bot_slug: r.try_get("bot_slug")?,
        state_enc: r.try_get("state_enc")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Creates a conversation of a user, with a bot and its first messages if given.
    pub async fn insert_conversation(
        &self,
        user_id: &str,
        id: &str,
        bot: Option<(&str, &str)>,
        messages: &[NewMessage],
    ) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        sqlx::query("INSERT INTO conversations (id, user_id, created_at, bot_slug, state_enc) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(user_id)
            .bind(now())
            .bind(bot.map(|b| b.0))
            .bind(bot.map(|b| b.1))
            .execute(&mut *tx)
            .await
            .map_err(q("creating a conversation"))?;
        insert_messages(&mut tx, user_id, id, messages).await?;
        tx.commit().await.map_err(q("creating a conversation"))
    }

    /// A conversation of a user, if it is theirs.
    pub async fn conversation(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        let row = self
            .scoped_optional(
                user_id,
                sqlx::query("SELECT id, bot_slug, state_enc, created_at FROM conversations WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id),
            )
            .await
            .map_err(q("reading a conversation"))?;
        row.as_ref()
            .map(conversation_of)
            .transpose()
            .map_err(q("reading a conversation"))
    }

    /// The conversations of a user, newest first.
    pub async fn conversations(&self, user_id: &str) -> Result<Vec<ConversationRow>, StoreError> {
        let rows = self
            .scoped_all(
                user_id,
                sqlx::query("SELECT id, bot_slug, state_enc, created_at FROM conversations WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT 500")
                    .bind(user_id),
            )
            .await
            .map_err(q("listing conversations"))?;
        rows.iter()
            .map(conversation_of)
            .collect::<Result<_, _>>()
            .map_err(q("listing conversations"))
    }

    /// Whether a conversation belongs to a user.
    pub async fn owns_conversation(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.conversation(user_id, id).await?.is_some())
    }

    /// Appends messages (already encrypted).
    pub async fn insert_messages(
        &self,
        user_id: &str,
        conversation_id: &str,
        messages: &[NewMessage],
    ) -> Result<(), StoreError> {
        let mut tx = self.as_user(user_id).await?;
        insert_messages(&mut tx, user_id, conversation_id, messages).await?;
        tx.commit().await.map_err(q("storing a message"))
    }

    /// Writes a bot's turn: the messages and the new state, only if the stored state is
    /// still `old_state`. Returns false (and writes nothing) when another turn won.
    pub async fn record_turn(
        &self,
        user_id: &str,
        conversation_id: &str,
        old_state: &str,
        new_state: &str,
        messages: &[NewMessage],
    ) -> Result<bool, StoreError> {
        let mut tx = self.as_user(user_id).await?;
        let done = sqlx::query(
            "UPDATE conversations SET state_enc = $1 WHERE id = $2 AND user_id = $3 AND state_enc = $4",
        )
        .bind(new_state)
        .bind(conversation_id)
        .bind(user_id)
        .bind(old_state)
        .execute(&mut *tx)
        .await
        .map_err(q("storing a turn"))?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(q("storing a turn"))?;
            return Ok(false);
        }
        insert_messages(&mut tx, user_id, conversation_id, messages).await?;
        tx.commit().await.map_err(q("storing a turn"))?;
        Ok(true)
    }

    /// The messages of a conversation, as visible to `user_id`.
    pub async fn messages(
        &self,
        user_id: &str,
        conversation_id: &str,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let rows = self
            .scoped_all(
                user_id,
                sqlx::query("SELECT id, body_enc, created_at, sender FROM messages WHERE conversation_id = $1 AND user_id = $2 ORDER BY created_at, id")
                    .bind(conversation_id)
                    .bind(user_id),
            )
            .await
            .map_err(q("reading messages"))?;
        rows.iter()
            .map(|r| {
                let sender: String = r.try_get("sender")?;
                Ok(MessageRow {
                    id: r.try_get("id")?,
                    body_enc: r.try_get("body_enc")?,
                    created_at: r.try_get("created_at")?,
                    sender: if sender == "bot" {
                        Sender::Bot
                    } else {
                        Sender::User
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(q("reading messages"))
    }
}

async fn insert_messages(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
    conversation_id: &str,
    messages: &[NewMessage],
) -> Result<(), StoreError> {
    // One microsecond apart, so a turn's messages keep their order.
    let t = jiff::Timestamp::now().as_microsecond();
    for (n, m) in (0_i64..).zip(messages) {
        sqlx::query("INSERT INTO messages (id, conversation_id, user_id, body_enc, created_at, sender) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&m.id)
            .bind(conversation_id)
            .bind(user_id)
            .bind(&m.body_enc)
            .bind(t + n)
            .bind(m.sender.as_str())
            .execute(&mut **tx)
            .await
            .map_err(q("storing a message"))?;
    }
    Ok(())
}
