//! Compiled bots, shared by every request. A copy is used for at most a second before
//! its stored version is compared again, so an edit made through any replica reaches
//! every replica within about a second. Compiling (indexing a knowledge base) runs on
//! the blocking pool.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::RwLock;

use super::{Bot, BotDefinition, BotError};
use crate::store::{Store, StoreError};

/// How long a compiled copy is used before its version is checked.
const RECHECK: Duration = Duration::from_secs(1);

/// Why a bot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored definition does not compile (written by an older or newer server).
    #[error("stored bot {slug:?} is invalid: {source}")]
    Invalid {
        /// The bot.
        slug: String,
        /// Why.
        #[source]
        source: BotError,
    },
    /// Compiling was cancelled.
    #[error("compiling bot {0:?} was cancelled")]
    Cancelled(String),
}

#[derive(Debug)]
struct Cached {
    version: i64,
    checked: Instant,
    bot: Arc<Bot>,
}

/// The compiled bots.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    cache: RwLock<HashMap<String, Cached>>,
}

/// Compiles a definition on the blocking pool.
pub async fn compile(definition: BotDefinition) -> Result<Result<Bot, BotError>, String> {
    let slug = definition.slug.clone();
    tokio::task::spawn_blocking(move || Bot::compile(definition))
        .await
        .map_err(|_| slug)
}

impl Registry {
    /// An empty registry over a store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The compiled bot, if it exists.
    pub async fn get(&self, slug: &str) -> Result<Option<Arc<Bot>>, RegistryError> {
        let known = {
            let cache = self.cache.read().await;
            match cache.get(slug) {
                Some(c) if c.checked.elapsed() < RECHECK => return Ok(Some(c.bot.clone())),
                Some(c) => Some((c.version, c.bot.clone())),
                None => None,
            }
        };
        let Some(version) = self.store.bot_version(slug).await? else {
            self.cache.write().await.remove(slug);
            return Ok(None);
        };
        if let Some((v, bot)) = known
            && v == version
        {
            if let Some(c) = self.cache.write().await.get_mut(slug) {
                c.checked = Instant::now();
            }
            return Ok(Some(bot));
        }
        let Some(row) = self.store.bot(slug).await? else {
            return Ok(None);
        };
        let invalid = |source| RegistryError::Invalid {
            slug: slug.to_owned(),
            source,
        };
        let definition: BotDefinition = serde_json::from_str(&row.definition)
            .map_err(|e| invalid(BotError::Parse(e.to_string())))?;
        let bot = Arc::new(
            compile(definition)
                .await
                .map_err(RegistryError::Cancelled)?
                .map_err(invalid)?,
        );
        self.cache.write().await.insert(
            slug.to_owned(),
            Cached {
                version: row.updated_at,
                checked: Instant::now(),
                bot: bot.clone(),
            },
        );
        Ok(Some(bot))
    }

    /// Forgets a bot (after this replica changed it).
    pub async fn forget(&self, slug: &str) {
        self.cache.write().await.remove(slug);
    }
}
