//! The rows an import reads and writes, beyond an identity's own.

use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::{Timestamp, UniqueKey};
use uuid::Uuid;

const EXTERNAL_ID_KEY: UniqueKey = UniqueKey {
    name: "identities_external_id_key",
    columns: "identities.external_id",
};

/// Imported identities.
pub struct ImportSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> ImportSql<DB> {
        /// The identity at `email` (canonical), if any: the external id it was
        /// imported under and the import run that brought it, if one did.
        pub async fn holder(
            c: &mut DB::Connection,
            email: &str,
        ) -> Result<Option<(Option<String>, Option<Uuid>)>, StoreError> {
            Ok(sqlx::query_as("SELECT external_id, import_run FROM identities WHERE email = $1")
            .bind(email)
            .fetch_optional(c)
            .await?)
        }

        /// Marks a new identity imported by `run`, with its verified flag and
        /// external id; false when another identity holds that external id.
        pub async fn mark_imported(
            c: &mut DB::Connection,
            user_id: UserId,
            (email_verified, external_id): (bool, Option<&str>),
            (run, now): (Uuid, DateTime<Utc>),
        ) -> Result<bool, StoreError> {
            let marked = sqlx::query(
                "UPDATE identities SET email_verified = $2, external_id = $3, imported_at = $4,
                                       import_run = $5
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(email_verified)
            .bind(external_id.map(str::to_owned))
            .bind(Timestamp(now))
            .bind(run)
            .execute(c)
            .await;
            match marked {
                Err(e) if DB::violates(&e, EXTERNAL_ID_KEY) => Ok(false),
                other => other.map(|_| true).map_err(Into::into),
            }
        }

        /// Whether an identity was imported under `external_id`.
        pub async fn external_id_taken(
            c: &mut DB::Connection,
            external_id: &str,
        ) -> Result<bool, StoreError> {
            Ok(
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM identities WHERE external_id = $1)")
                    .bind(external_id)
                    .fetch_one(c)
                    .await?,
            )
        }

        /// Whether a role exists.
        pub async fn role_exists(c: &mut DB::Connection, name: &str) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)")
                .bind(name)
                .fetch_one(c)
                .await?)
        }
    }
}
