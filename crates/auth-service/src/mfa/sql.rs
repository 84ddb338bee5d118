//! The second factor: a TOTP secret per identity (sealed when a key-encryption
//! key is configured), its last accepted time step, hashed recovery codes and
//! pending login challenges. Every "accept once" is one conditional UPDATE.

use super::model::*;
use crate::storage::StoreError;
use crate::throttle::Counter;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::Timestamp;

/// TOTP secrets, recovery codes and challenges.
pub struct MfaSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> MfaSql<DB> {
        /// The identity's TOTP secret, confirmed or not.
        pub async fn totp(
            c: &mut DB::Connection,
            user_id: UserId,
        ) -> Result<Option<TotpRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT secret, encrypted, confirmed_at IS NOT NULL AS confirmed, failures, failed_at
                 FROM mfa_totp WHERE user_id = $1",
            )
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Stores a new unconfirmed secret (replacing an unconfirmed one); false
        /// when a confirmed secret exists.
        pub async fn begin_enrolment(
            c: &mut DB::Connection,
            user_id: UserId,
            secret: &[u8],
            encrypted: bool,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
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
            .execute(&mut *c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Confirms the unconfirmed secret with the code of time step `step` and
        /// replaces the recovery codes with `codes`; false when there is nothing
        /// to confirm, the step was already used, or the stored secret is no
        /// longer `checked` (the one the code was checked against: an
        /// EnrollTotp raced this confirmation).
        pub async fn confirm(
            c: &mut DB::Connection,
            (user_id, checked): (UserId, &[u8]),
            step: i64,
            codes: &[[u8; 32]],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE mfa_totp SET confirmed_at = $3, last_step = $2, failures = 0, failed_at = NULL
                 WHERE user_id = $1 AND confirmed_at IS NULL AND secret = $4
                   AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user_id)
            .bind(step)
            .bind(Timestamp(now))
            .bind(checked)
            .execute(&mut *c)
            .await?;
            if DB::rows_affected(&done) != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *c)
                .await?;
            for code in codes {
                sqlx::query("INSERT INTO mfa_recovery_codes (code_hash, user_id) VALUES ($1, $2)")
                    .bind(&code[..])
                    .bind(user_id)
                    .execute(&mut *c)
                    .await?;
            }
            Ok(true)
        }

        /// Counts one more wrong code against the identity's factor (reserved
        /// before the code is checked); the counter after it, `None` without a
        /// factor.
        pub async fn reserve_failure(
            c: &mut DB::Connection,
            user_id: UserId,
            now: DateTime<Utc>,
        ) -> Result<Option<Counter>, StoreError> {
            // One statement: concurrent wrong codes are serialised by the row,
            // so each sees a distinct count.
            let counter: Option<Counter> = sqlx::query_as(
                "UPDATE mfa_totp SET failures = failures + 1, failed_at = $2
                 WHERE user_id = $1
                 RETURNING failures AS count, created_at AS window_start, failed_at AS updated_at",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .fetch_optional(&mut *c)
            .await?;
            Ok(counter)
        }

        /// Removes the confirmed second factor (secret, codes); false when
        /// there was none.
        pub async fn remove(c: &mut DB::Connection, user_id: UserId) -> Result<bool, StoreError> {
            let done =
                sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL")
                    .bind(user_id)
                    .execute(&mut *c)
                    .await?;
            if DB::rows_affected(&done) != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *c)
                .await?;
            Ok(true)
        }

        pub async fn insert_challenge(
            c: &mut DB::Connection,
            challenge: &NewChallenge,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO mfa_challenges (challenge_hash, user_id, credential, client_address,
                                             user_agent, created_at, expires_at, credential_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&challenge.hash[..])
            .bind(challenge.user_id)
            .bind(&challenge.credential[..])
            .bind(&challenge.client_address)
            .bind(&challenge.user_agent)
            .bind(Timestamp(challenge.created_at))
            .bind(Timestamp(challenge.expires_at))
            .bind(challenge.credential_version)
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// The live (unspent, unexpired) challenge with `hash`.
        pub async fn challenge(
            c: &mut DB::Connection,
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
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Counts a wrong answer to a live challenge; the `max`-th ends it.
        pub async fn fail_challenge(
            c: &mut DB::Connection,
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
            .execute(&mut *c)
            .await?;
            Ok(())
        }
    }
}

platform::generic_store! {
    impl<DB> MfaSql<DB> {
        /// Forgets the factor's failures (a right code).
        pub async fn clear_factor_failures(
            c: &mut DB::Connection,
            user_id: UserId,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE mfa_totp SET failures = 0, failed_at = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(c)
                .await?;
            Ok(())
        }

        /// Accepts time step `step` of a confirmed factor if it is later than
        /// every accepted one (a code works once).
        pub async fn spend_step(
            c: &mut DB::Connection,
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
            .execute(c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Spends an unused recovery code.
        pub async fn spend_recovery_code(
            c: &mut DB::Connection,
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
            .execute(c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Spends a live challenge; false when it is not (any more).
        pub async fn spend_challenge_row(
            c: &mut DB::Connection,
            hash: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE mfa_challenges SET used_at = $2
                 WHERE challenge_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(&hash[..])
            .bind(Timestamp(now))
            .execute(c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}
