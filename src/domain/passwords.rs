//! Password hashing with argon2id. Hashing is CPU- and memory-heavy, so it runs on the
//! blocking pool with a bounded number in flight: a burst of logins queues instead of
//! allocating 19 MiB per request until memory runs out.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::{OnceCell, Semaphore};

use super::DomainError;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;

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
    /// A hash of a random password, verified when the user does not exist so that an
    /// unknown username takes as long as a wrong password.
    dummy_hash: Arc<OnceCell<String>>,
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
            dummy_hash: Arc::new(OnceCell::new()),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
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
        let argon2 = self.argon2();
        let password = password.as_bytes().to_vec();
        self.run_bounded(move || {
            argon2
                .hash_password(&password)
                .map(|hash| hash.to_string())
                .map_err(|e| DomainError::Internal(format!("argon2 hash: {e}")))
        })
        .await?
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
        let argon2 = self.argon2();
        let candidate = password.as_bytes().to_vec();
        let stored_hash = hash.clone();
        let matches = self
            .run_bounded(move || {
                argon2
                    .verify_password(&candidate, stored_hash.as_str())
                    .is_ok()
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
                let random = crate::crypto::random_token(24)?;
                self.hash(&random).await
            })
            .await
            .cloned()
    }

    async fn run_bounded<T, F>(&self, work: F) -> Result<T, DomainError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| DomainError::Internal("password hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| DomainError::Internal(format!("password hashing task: {e}")))
    }
}

/// Length bounds for a new password (003 §6.2). The full policy arrives with accounts.
pub fn check_new_password(password: &str) -> Result<(), DomainError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
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
    async fn hash_is_argon2id_with_configured_cost() {
        let hasher = cheap(3);
        let hash = hasher.hash("password1").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=3,p=1$"), "{hash}");
    }
}
