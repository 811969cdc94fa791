//! Password hashing with argon2id. Hashing is CPU- and memory-heavy, so it runs on the
//! blocking pool with a bounded number in flight: a burst of logins queues instead of
//! allocating 19 MiB per request until memory runs out. The work memory itself is kept
//! and reused: allocating and zeroing it for every sign-in cost about a fifth of the
//! server's CPU, and freed copies piled up per thread. The queue itself is bounded too:
//! when more checks wait than `with_queue_limit` allows, the caller is told the server
//! is busy (`DomainError::Unavailable`, a 503 with Retry-After) at once, instead of every
//! request waiting ever longer.

use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::sync::{OnceCell, Semaphore};

use super::DomainError;
use crate::crypto;

const SALT_LEN: usize = 16;

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Wrong,
    /// Right, and the stored hash uses the configured cost.
    Right,
    /// Right, but hashed with other parameters: store a fresh hash.
    RightButOutdated,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Hashes running plus hashes waiting; when none is left the server is busy.
    slots: Arc<Semaphore>,
    /// Work memory, one buffer per hash in flight at most.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash of a random password, verified when the user does not exist so that an
    /// unknown username takes as long as a wrong password.
    dummy_hash: Arc<OnceCell<String>>,
}

/// A PHC string's parts (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
struct Phc {
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Phc {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('$');
        let (empty, algorithm, version) = (parts.next()?, parts.next()?, parts.next()?);
        if !empty.is_empty() || algorithm != "argon2id" || version != "v=19" {
            return None;
        }
        let (mut m, mut t, mut p) = (None, None, None);
        for pair in parts.next()?.split(',') {
            let (key, value) = pair.split_once('=')?;
            let value: u32 = value.parse().ok()?;
            match key {
                "m" => m = Some(value),
                "t" => t = Some(value),
                "p" => p = Some(value),
                _ => return None,
            }
        }
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        let params = Params::new(m?, t?, p?, Some(hash.len())).ok()?;
        Some(Phc { params, salt, hash })
    }

    fn format(params: &Params, salt: &[u8], hash: &[u8]) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(hash)
        )
    }
}

/// argon2id of `password` into an output as long as `params` asks, in `memory`.
fn argon2id(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    memory: &mut Vec<Block>,
) -> Result<Vec<u8>, DomainError> {
    memory.resize(params.block_count(), Block::new());
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory.as_mut_slice())
        .map_err(|e| DomainError::Internal(format!("argon2: {e}")))?;
    Ok(out)
}

impl PasswordHasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
    ) -> Result<Self, DomainError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| DomainError::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            slots: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: Arc::new(OnceCell::new()),
        })
    }

    /// At most `waiting` password checks wait for a free hasher; more are refused.
    pub fn with_queue_limit(mut self, waiting: usize) -> Self {
        let running = self.permits.available_permits();
        self.slots = Arc::new(Semaphore::new(
            running.saturating_add(waiting).min(Semaphore::MAX_PERMITS),
        ));
        self
    }

    /// The PHC prefix every hash at the current cost starts with.
    fn current_prefix(&self) -> String {
        format!(
            "$argon2id$v=19$m={},t={},p={}$",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost()
        )
    }

    pub async fn hash(&self, password: &str) -> Result<String, DomainError> {
        let params = self.params.clone();
        let salt = crypto::random_bytes(SALT_LEN)?;
        let password = password.as_bytes().to_vec();
        self.run_bounded(move |memory| {
            let hash = argon2id(&params, &password, &salt, memory)?;
            Ok(Phc::format(&params, &salt, &hash))
        })
        .await
    }

    /// Checks `password` against `stored`. With no stored hash (unknown user, or an
    /// account without a password) a dummy hash is checked so the time taken is the same.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<PasswordCheck, DomainError> {
        let (hash, real) = match stored {
            Some(hash) => (hash.to_string(), true),
            None => (self.dummy_hash().await?, false),
        };
        let Some(phc) = Phc::parse(&hash) else {
            tracing::warn!("a stored password hash is not an argon2id PHC string");
            return Ok(PasswordCheck::Wrong);
        };
        let candidate = password.as_bytes().to_vec();
        let matches = self
            .run_bounded(move |memory| {
                let computed = argon2id(&phc.params, &candidate, &phc.salt, memory)?;
                Ok(crypto::constant_time_eq(&computed, &phc.hash))
            })
            .await?;
        Ok(
            match (real && matches, hash.starts_with(&self.current_prefix())) {
                (false, _) => PasswordCheck::Wrong,
                (true, true) => PasswordCheck::Right,
                (true, false) => PasswordCheck::RightButOutdated,
            },
        )
    }

    async fn dummy_hash(&self) -> Result<String, DomainError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let random = crypto::random_token(24)?;
                self.hash(&random).await
            })
            .await
            .cloned()
    }

    /// Runs `work` on the blocking pool with a permit and a reused memory buffer.
    async fn run_bounded<T, F>(&self, work: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vec<Block>) -> Result<T, DomainError> + Send + 'static,
    {
        let _slot = self.slots.clone().try_acquire_owned().map_err(|_| {
            DomainError::Unavailable(
                "The server is busy checking passwords. Try again in a moment.".into(),
            )
        })?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DomainError::Internal("password hasher closed".into()))?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let take = pool.lock().map(|mut free| free.pop()).unwrap_or(None);
            let mut memory = take.unwrap_or_default();
            let result = work(&mut memory);
            if let Ok(mut free) = pool.lock() {
                free.push(memory);
            }
            result
        })
        .await
        .map_err(|e| DomainError::Internal(format!("password hashing task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(iterations: u32) -> PasswordHasher {
        PasswordHasher::new(1024, iterations, 1, 2).unwrap()
    }

    #[tokio::test]
    async fn right_wrong_and_outdated() {
        let old = cheap(1);
        let hash = old.hash("correct horse").await.unwrap();
        assert_eq!(
            old.verify("correct horse", Some(&hash)).await.unwrap(),
            PasswordCheck::Right
        );
        assert_eq!(
            old.verify("wrong horse", Some(&hash)).await.unwrap(),
            PasswordCheck::Wrong
        );
        let new = cheap(2);
        assert_eq!(
            new.verify("correct horse", Some(&hash)).await.unwrap(),
            PasswordCheck::RightButOutdated
        );
        assert_eq!(
            new.verify("correct horse", None).await.unwrap(),
            PasswordCheck::Wrong
        );
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ours = cheap(2);
        let reference = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 2, 1, None).unwrap(),
        );
        let theirs = reference
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert_eq!(
            ours.verify("correct horse", Some(&theirs)).await.unwrap(),
            PasswordCheck::Right
        );
        assert_eq!(
            ours.verify("wrong horse", Some(&theirs)).await.unwrap(),
            PasswordCheck::Wrong
        );
        let mine = ours.hash("correct horse").await.unwrap();
        assert!(
            reference
                .verify_password(b"correct horse", mine.as_str())
                .is_ok()
        );
        assert!(
            reference
                .verify_password(b"wrong horse", mine.as_str())
                .is_err()
        );
        assert_eq!(
            ours.verify("x", Some("not a hash")).await.unwrap(),
            PasswordCheck::Wrong
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        // One hasher, one waiting place: of four simultaneous checks two are refused.
        let hasher = PasswordHasher::new(8 * 1024, 4, 1, 1)
            .unwrap()
            .with_queue_limit(1);
        let hash = hasher.hash("pw").await.unwrap();
        let checks = (0..4).map(|_| hasher.verify("pw", Some(&hash)));
        let results = futures::future::join_all(checks).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(DomainError::Unavailable(_))))
            .count();
        let done = results
            .iter()
            .filter(|r| matches!(r, Ok(PasswordCheck::Right)))
            .count();
        assert_eq!((busy, done), (2, 2), "{results:?}");
        // Afterwards the places are free again.
        assert_eq!(
            hasher.verify("pw", Some(&hash)).await.unwrap(),
            PasswordCheck::Right
        );
    }

    #[tokio::test]
    async fn hash_is_argon2id_with_configured_cost() {
        let hasher = cheap(3);
        let hash = hasher.hash("password1").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=3,p=1$"), "{hash}");
    }
}
