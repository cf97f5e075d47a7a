//! Argon2 off the async workers: every hash and verification runs on the blocking pool,
//! at most one per core at a time, with a bounded queue behind them. When the queue is
//! full the caller is told to come back later ([`HashError::Busy`], answered 503 with
//! `Retry-After`), so a flood of logins can neither starve the async workers (health
//! checks, every other request) nor grow memory without bound. Passwords longer than
//! [`MAX_PASSWORD_BYTES`] are refused before any work.

use std::sync::Arc;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::password::{self, PasswordError};

/// Longest password accepted, in bytes: Argon2 work grows with it, and no person types
/// more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hash requests that may wait for a core, per core.
const QUEUE_PER_CORE: usize = 8;

/// Why a hash or verification was not done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("password longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Every core is hashing and the queue is full: try again shortly.
    #[error("too many password checks at once; try again shortly")]
    Busy,
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] PasswordError),
    /// The blocking task failed.
    #[error("password task: {0}")]
    Task(String),
}

/// The bounded pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * QUEUE_PER_CORE)
    }
}

impl Hasher {
    /// `concurrency` hashes at once, `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(concurrency.max(1))),
            admitted: Arc::new(Semaphore::new(concurrency.max(1) + queue)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        password: &str,
        work: impl FnOnce(&str) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(HashError::TooLong);
        }
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Busy)?;
        let password = Zeroizing::new(password.to_owned());
        tokio::task::spawn_blocking(move || work(&password))
            .await
            .map_err(|e| HashError::Task(e.to_string()))
    }

    /// Hashes a password to a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(self.run(password, password::hash).await??)
    }

    /// Whether `password` matches `phc`.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        let phc = phc.to_owned();
        self.run(password, move |pw| password::verify(pw, &phc))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_passwords_are_refused_before_hashing() {
        let h = Hasher::default();
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(h.hash(&long).await, Err(HashError::TooLong)));
        assert!(matches!(
            h.verify(&long, "$argon2id$").await,
            Err(HashError::TooLong)
        ));
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(h.verify("correct horse battery", &phc).await.unwrap());
        assert!(!h.verify("wrong", &phc).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_says_busy_and_the_runtime_stays_responsive() {
        let h = Hasher::new(1, 1);
        let phc = password::hash("correct horse battery").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (h, phc) = (h.clone(), phc.clone());
            tasks.push(tokio::spawn(async move { h.verify("guess", &phc).await }));
        }
        // The async workers are free while Argon2 runs on the blocking pool.
        let tick = std::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(tick.elapsed() < std::time::Duration::from_millis(500));
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert_eq!(
            busy, 4,
            "one running, one waiting, the rest told to come back"
        );
    }
}
