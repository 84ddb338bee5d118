//! Argon2id password hashing on a fixed pool of dedicated threads.
//!
//! Each worker owns one Argon2 memory buffer (19 MiB at OWASP parameters) and
//! reuses it for every hash, so memory is bounded by `workers × m_cost` whatever
//! the load, and no hash pays for allocating and faulting in fresh pages. At
//! most `queue` hashes wait; past that, callers are told to retry. A worker that
//! has been idle for a while gives its buffer back. Hashing never runs on the
//! async workers, so a login storm cannot slow token validation.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use crossbeam_channel::{RecvTimeoutError, Sender, TrySendError};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// The stored "hash" of an identity without a usable password (its email
/// change was cancelled as not its owner's): nothing verifies against it, and
/// only a reset sets a new one.
pub const NO_PASSWORD: &str = "!";

/// A worker idle this long frees its buffer.
const IDLE_RELEASE: Duration = Duration::from_secs(5);
const OUTPUT_LEN: usize = 32;

/// Why hashing did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes are queued; the caller should retry later.
    #[error("password hashing is saturated")]
    Saturated,
    /// Argon2 or the pool failed.
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

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The hashing pool; clones share it.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: Sender<Job>,
    /// Verified for unknown users, so that they cost the same as known ones.
    dummy_hash: Arc<str>,
}

fn failed(e: impl std::fmt::Display) -> HashError {
    HashError::Failed(e.to_string())
}

/// Runs Argon2id into `out` with `memory`, growing it when the parameters need more.
fn argon2_into(
    params: &Params,
    algorithm: Algorithm,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), HashError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(failed)
}

fn phc(params: &Params, salt: &[u8], hash: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

fn hash_with(
    params: &Params,
    password: &str,
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut raw = [0u8; 16];
    let salt = salt.decode_b64(&mut raw).map_err(failed)?;
    let mut out = [0u8; OUTPUT_LEN];
    argon2_into(
        params,
        Algorithm::Argon2id,
        password.as_bytes(),
        salt,
        &mut out,
        memory,
    )?;
    Ok(phc(params, salt, &out))
}

fn verify_with(
    current: &Params,
    password: &str,
    stored: &str,
    memory: &mut Vec<Block>,
) -> Result<Verified, HashError> {
    if !stored.starts_with("$argon2") {
        // Imported from another system: replaced by Argon2id once it matches.
        let matches = super::imported::verify(password.as_bytes(), stored).map_err(failed)?;
        return Ok(Verified {
            matches,
            needs_rehash: true,
        });
    }
    let parsed = PasswordHash::new(stored).map_err(failed)?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(failed)?;
    let params = Params::try_from(&parsed).map_err(failed)?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| failed("stored hash has no salt"))?
        .decode_b64(&mut salt_buf)
        .map_err(failed)?;
    let expected = parsed
        .hash
        .ok_or_else(|| failed("stored hash has no output"))?;
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let params = Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Some(expected.len()),
    )
    .map_err(failed)?;
    argon2_into(
        &params,
        algorithm,
        password.as_bytes(),
        salt,
        &mut out,
        memory,
    )?;
    let matches = out.ct_eq(expected).into();
    let needs_rehash = algorithm != Algorithm::Argon2id
        || (params.m_cost(), params.t_cost(), params.p_cost())
            != (current.m_cost(), current.t_cost(), current.p_cost());
    Ok(Verified {
        matches,
        needs_rehash,
    })
}

impl PasswordHasher {
    /// A pool of `workers` threads and at most `queue` waiting hashes.
    pub fn new(params: HashParams, workers: usize, queue: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(failed)?;
        let dummy_hash = hash_with(&params, "dummy password for unknown users", &mut Vec::new())?;
        let (jobs, inbox) = crossbeam_channel::bounded::<Job>(queue.max(1));
        for i in 0..workers.max(1) {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        match inbox.recv_timeout(IDLE_RELEASE) {
                            Ok(job) => job(&mut memory),
                            // Give the memory back while nobody logs in.
                            Err(RecvTimeoutError::Timeout) => memory = Vec::new(),
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                })
                .map_err(failed)?;
        }
        Ok(Self {
            params,
            jobs,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move |memory| hash_with(&params, password.expose_secret(), memory))
            .await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no
    /// stored hash (an unknown user), spending the same work either way.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        // No password at all verifies nothing, after the same work.
        let stored = stored.filter(|s| *s != NO_PASSWORD);
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let params = self.params.clone();
        let password = password.clone();
        let v = self
            .run(move |memory| verify_with(&params, password.expose_secret(), &stored, memory))
            .await?;
        Ok(Verified {
            matches: v.matches && known,
            ..v
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |memory| {
            let _entered = span.enter();
            let _ = tx.send(work(memory));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Saturated),
            Err(TrySendError::Disconnected(_)) => return Err(failed("the hashing pool stopped")),
        }
        rx.await.map_err(failed)?
    }
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
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
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
    async fn verifies_hashes_made_by_the_reference_implementation() {
        use argon2::password_hash::PasswordHasher as _;
        let params = Params::new(2048, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let pool = PasswordHasher::new(fast(), 1, 8).unwrap();
        let v = pool
            .verify(
                &SecretString::from("correct horse battery"),
                Some(&reference),
            )
            .await
            .unwrap();
        assert_eq!(
            v,
            Verified {
                matches: true,
                needs_rehash: true
            },
            "other parameters ask for a rehash"
        );
        let ours = pool.hash(&SecretString::from("x y z w v")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        use argon2::PasswordVerifier as _;
        assert!(
            Argon2::default()
                .verify_password(b"x y z w v", &parsed)
                .is_ok(),
            "the reference verifies ours"
        );
    }

    #[tokio::test]
    async fn unknown_user_never_matches_even_the_dummy_password() {
        let pool = PasswordHasher::new(fast(), 1, 8).unwrap();
        let pw = SecretString::from("dummy password for unknown users");
        assert!(!pool.verify(&pw, None).await.unwrap().matches);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_grown() {
        let pool = PasswordHasher::new(
            HashParams {
                memory_kib: 8192,
                iterations: 4,
                parallelism: 1,
            },
            1,
            1,
        )
        .unwrap();
        let pw = SecretString::from("correct horse battery");
        let results = futures::future::join_all((0..8).map(|_| pool.hash(&pw))).await;
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(HashError::Saturated)))
        );
        assert!(results.iter().any(Result::is_ok));
    }
}
