//! The second factor: a TOTP secret per identity (sealed when a key-encryption
//! key is configured), its last accepted time step, hashed recovery codes and
//! pending login challenges. Every "accept once" is one conditional UPDATE.

use super::{Counter, Ends, Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::Timestamp;

/// An identity's TOTP secret as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRecord {
    pub secret: Vec<u8>,
    pub encrypted: bool,
    pub confirmed: bool,
    /// Wrong codes since the last right one (the factor's own counter).
    pub failures: i64,
    pub failed_at: Option<Timestamp>,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub hash: [u8; 32],
    pub user_id: UserId,
    /// SHA-256 of the password hash the login checked.
    pub credential: [u8; 32],
    /// The identity's credential version the login checked.
    pub credential_version: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live challenge, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub user_id: UserId,
    pub credential: Vec<u8>,
    pub credential_version: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// TOTP secrets, recovery codes and challenges.
#[async_trait]
pub trait MfaStore: Send + Sync + std::fmt::Debug {
    /// The identity's TOTP secret, confirmed or not.
    async fn totp(&self, user_id: UserId) -> Result<Option<TotpRecord>, StoreError>;
    /// Stores a new unconfirmed secret (replacing an unconfirmed one) if the
    /// identity's credentials are still at `version` (the one the request
    /// checked); false when they are not or a confirmed secret exists.
    async fn begin_enrolment(
        &self,
        (user_id, version): (UserId, i64),
        secret: &[u8],
        encrypted: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Confirms the unconfirmed secret with the code of time step `step`,
    /// replaces the recovery codes, ends what `ends` names and records the
    /// `notice` events; false when
    /// there is nothing to confirm, the step was already used, or the stored
    /// secret is no longer `checked` (the one the code was checked against: an
    /// EnrollTotp raced this confirmation).
    async fn confirm(
        &self,
        (user_id, checked): (UserId, &[u8]),
        step: i64,
        codes: &[[u8; 32]],
        (ends, notice): (&Ends, &[OutboxEvent]),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Counts one more wrong code against the identity's factor (reserved
    /// before the code is checked); the counter after it, `None` without a
    /// factor. The attempt that brings the count to `alarm.0` records the
    /// event `alarm.1` with it (the owner is told once of the lockout).
    async fn reserve_failure(
        &self,
        user_id: UserId,
        alarm: Option<(i64, &OutboxEvent)>,
        now: DateTime<Utc>,
    ) -> Result<Option<Counter>, StoreError>;
    /// A right code: the factor's failures are forgotten.
    async fn clear_failures(&self, user_id: UserId) -> Result<(), StoreError>;
    /// Accepts time step `step` if it is later than every accepted one.
    async fn use_step(&self, user_id: UserId, step: i64) -> Result<bool, StoreError>;
    /// Spends an unused recovery code.
    async fn use_recovery_code(
        &self,
        user_id: UserId,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Removes the second factor (secret, codes), ends what `ends` names and
    /// records `notice`; the sessions revoked, `None` when there was no factor.
    async fn remove(
        &self,
        user_id: UserId,
        (ends, notice): (&Ends, &[OutboxEvent]),
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<SessionId>>, StoreError>;
    async fn insert_challenge(&self, challenge: &NewChallenge) -> Result<(), StoreError>;
    /// The live (unspent, unexpired) challenge with `hash`.
    async fn challenge(
        &self,
        hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<ChallengeRecord>, StoreError>;
    /// Counts a wrong answer to a live challenge; the `max`-th ends it.
    async fn fail_challenge(
        &self,
        hash: &[u8; 32],
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

platform::generic_store! {
    #[async_trait]
    impl<DB> MfaStore for Sql<DB> {
        async fn totp(&self, user_id: UserId) -> Result<Option<TotpRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT secret, encrypted, confirmed_at IS NOT NULL AS confirmed, failures, failed_at
                 FROM mfa_totp WHERE user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn begin_enrolment(
            &self,
            (user_id, version): (UserId, i64),
            secret: &[u8],
            encrypted: bool,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let locked = Self::lock_identity(&mut tx, user_id).await?;
            if !locked.is_some_and(|l| !l.disabled && l.credential_version == version) {
                return Ok(false);
            }
            let done = sqlx::query(
                "INSERT INTO mfa_totp (user_id, secret, encrypted, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO UPDATE SET
                     secret = excluded.secret, encrypted = excluded.encrypted,
                     created_at = excluded.created_at, last_step = NULL,
                     failures = 0, failed_at = NULL
                 WHERE mfa_totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret)
            .bind(encrypted)
            .bind(Timestamp(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        async fn confirm(
            &self,
            (user_id, checked): (UserId, &[u8]),
            step: i64,
            codes: &[[u8; 32]],
            (ends, notice): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            Self::lock_identity(&mut tx, user_id).await?;
            let done = sqlx::query(
                "UPDATE mfa_totp SET confirmed_at = $3, last_step = $2, failures = 0, failed_at = NULL
                 WHERE user_id = $1 AND confirmed_at IS NULL AND secret = $4
                   AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .bind(Timestamp(now))
            .bind(checked)
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for code in codes {
                sqlx::query("INSERT INTO mfa_recovery_codes (code_hash, user_id) VALUES ($1, $2)")
                    .bind(&code[..])
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, notice).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn reserve_failure(
            &self,
            user_id: UserId,
            alarm: Option<(i64, &OutboxEvent)>,
            now: DateTime<Utc>,
        ) -> Result<Option<Counter>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            // One statement: concurrent wrong codes are serialised by the row,
            // so each sees a distinct count.
            let counter: Option<Counter> = sqlx::query_as(
                "UPDATE mfa_totp SET failures = failures + 1, failed_at = $2
                 WHERE user_id = $1
                 RETURNING failures AS count, created_at AS window_start, failed_at AS updated_at",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .fetch_optional(&mut *tx)
            .await?;
            if let (Some(c), Some((at, event))) = (&counter, alarm)
                && c.count == at
            {
                SqlOutbox::<DB>::insert(&mut tx, event).await?;
            }
            tx.commit().await?;
            Ok(counter)
        }

        async fn clear_failures(&self, user_id: UserId) -> Result<(), StoreError> {
            let mut conn = self.pool.acquire().await?;
            Self::clear_factor_failures(&mut conn, user_id).await
        }

        async fn use_step(&self, user_id: UserId, step: i64) -> Result<bool, StoreError> {
            let mut conn = self.pool.acquire().await?;
            Self::spend_step(&mut conn, user_id, step).await
        }

        async fn use_recovery_code(
            &self,
            user_id: UserId,
            hash: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut conn = self.pool.acquire().await?;
            Self::spend_recovery_code(&mut conn, user_id, hash, now).await
        }

        async fn remove(
            &self,
            user_id: UserId,
            (ends, notice): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<Option<Vec<SessionId>>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            Self::lock_identity(&mut tx, user_id).await?;
            let done = sqlx::query(
                "DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) != 1 {
                return Ok(None);
            }
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, notice).await?;
            tx.commit().await?;
            Ok(Some(revoked))
        }

        async fn insert_challenge(&self, c: &NewChallenge) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO mfa_challenges (challenge_hash, user_id, credential, client_address,
                                             user_agent, created_at, expires_at, credential_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&c.hash[..])
            .bind(c.user_id)
            .bind(&c.credential[..])
            .bind(&c.client_address)
            .bind(&c.user_agent)
            .bind(Timestamp(c.created_at))
            .bind(Timestamp(c.expires_at))
            .bind(c.credential_version)
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        async fn challenge(
            &self,
            hash: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<Option<ChallengeRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT user_id, credential, credential_version, client_address, user_agent
                 FROM mfa_challenges
                 WHERE challenge_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(&hash[..])
            .bind(Timestamp(now))
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn fail_challenge(
            &self,
            hash: &[u8; 32],
            max: i64,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE mfa_challenges
                 SET failures = failures + 1,
                     used_at = CASE WHEN failures + 1 >= $2 THEN $3 ELSE used_at END
                 WHERE challenge_hash = $1 AND used_at IS NULL",
            )
            .bind(&hash[..])
            .bind(max)
            .bind(Timestamp(now))
            .execute(&self.pool)
            .await?;
            Ok(())
        }
    }
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Forgets the factor's failures (a right code).
        pub(crate) async fn clear_factor_failures(
            conn: &mut DB::Connection,
            user_id: UserId,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE mfa_totp SET failures = 0, failed_at = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(conn)
                .await?;
            Ok(())
        }

        /// Accepts time step `step` of a confirmed factor if it is later than
        /// every accepted one (a code works once).
        pub(crate) async fn spend_step(
            conn: &mut DB::Connection,
            user_id: UserId,
            step: i64,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE mfa_totp SET last_step = $2
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL
                   AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .execute(conn)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Spends an unused recovery code.
        pub(crate) async fn spend_recovery_code(
            conn: &mut DB::Connection,
            user_id: UserId,
            hash: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE mfa_recovery_codes SET used_at = $3
                 WHERE code_hash = $2 AND user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(&hash[..])
            .bind(Timestamp(now))
            .execute(conn)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Spends a live challenge; false when it is not (any more).
        pub(crate) async fn spend_challenge_row(
            conn: &mut DB::Connection,
            hash: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE mfa_challenges SET used_at = $2
                 WHERE challenge_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(&hash[..])
            .bind(Timestamp(now))
            .execute(conn)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}
