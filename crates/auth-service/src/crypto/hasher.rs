//! Argon2id password hashing on a bounded pool of blocking threads.
//!
//! Each hash in flight holds Argon2's memory (19 MiB at OWASP parameters), so at
//! most `workers` run at once and at most `queue` wait; past that, callers are told
//! to retry. Hashing never runs on the async workers, so a login storm cannot slow
//! token validation.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// Why hashing did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are queued; the caller should retry later.
    #[error("password hashing is saturated")]
    Saturated,
    /// Argon2 or the blocking pool failed.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password matches.
    pub matches: bool,
    /// The stored hash uses other parameters than the current ones.
    pub needs_rehash: bool,
}

/// Argon2id parameters (OWASP's recommendation by default).
#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// A bounded Argon2id hashing pool.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    /// Verified for unknown users, so that they cost the same as known ones.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A pool of `workers` concurrent hashes and at most `queue` waiting.
    pub fn new(params: HashParams, workers: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy_hash = hash_blocking(&params, "dummy password for unknown users")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_blocking(&params, password.expose_secret()))
            .await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no
    /// stored hash (an unknown user), spending the same work either way.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let params = self.params.clone();
        let password = password.clone();
        let verified = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&stored).map_err(|e| HashError::Failed(e.to_string()))?;
                let matches = argon2(&params)
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok();
                let needs_rehash = Params::try_from(&parsed).map_or(true, |p| {
                    (p.m_cost(), p.t_cost(), p.p_cost())
                        != (params.m_cost(), params.t_cost(), params.p_cost())
                }) || parsed.algorithm != Algorithm::Argon2id.ident();
                Ok(Verified {
                    matches,
                    needs_rehash,
                })
            })
            .await?;
        Ok(Verified {
            matches: verified.matches && known,
            ..verified
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Saturated);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|e| HashError::Failed(e.to_string()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _entered = span.enter();
            work()
        })
        .in_current_span()
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> HashParams {
        HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let pool = PasswordHasher::new(fast(), 2, 8).unwrap();
        let pw = SecretString::from("correct horse battery");
        let h = pool.hash(&pw).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        let ok = pool.verify(&pw, Some(&h)).await.unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = pool
            .verify(&SecretString::from("wrong"), Some(&h))
            .await
            .unwrap();
        assert!(!bad.matches);
    }

    #[tokio::test]
    async fn unknown_user_never_matches_even_the_dummy_password() {
        let pool = PasswordHasher::new(fast(), 1, 8).unwrap();
        let pw = SecretString::from("dummy password for unknown users");
        assert!(!pool.verify(&pw, None).await.unwrap().matches);
    }

    #[tokio::test]
    async fn other_parameters_ask_for_a_rehash() {
        let old = PasswordHasher::new(fast(), 1, 8).unwrap();
        let pw = SecretString::from("correct horse battery");
        let h = old.hash(&pw).await.unwrap();
        let new = PasswordHasher::new(
            HashParams {
                memory_kib: 2048,
                ..fast()
            },
            1,
            8,
        )
        .unwrap();
        let v = new.verify(&pw, Some(&h)).await.unwrap();
        assert!(v.matches && v.needs_rehash);
    }
}
