//! Service accounts: the credentials of internal callers (the secret stored only
//! as its SHA-256) and the roles they hold.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::ServiceAccountId;
use platform::sql::{Timestamp, UniqueKey};

/// Active account names are unique (a partial unique index).
const NAME_KEY: UniqueKey = UniqueKey {
    name: "service_accounts_name_key",
    columns: "service_accounts.name",
};

const CLIENT_ID_KEY: UniqueKey = UniqueKey {
    name: "service_accounts_client_id_key",
    columns: "service_accounts.client_id",
};

/// Service accounts.
pub struct AccountSql<DB>(std::marker::PhantomData<DB>);

const ACCOUNT: &str = "SELECT id, name, client_id, secret_hash, created_at,
                              disabled_at IS NOT NULL AS disabled
                       FROM service_accounts WHERE disabled_at IS NULL";

platform::generic_store! {
    impl<DB> AccountSql<DB> {
        /// The active accounts `filter` selects (an `AND` clause on `$1`), with roles.
        pub async fn accounts(
            c: &mut DB::Connection,
            filter: &str,
            value: Option<&str>,
        ) -> Result<Vec<ServiceAccountRecord>, StoreError> {
            let sql = format!("{ACCOUNT} {filter} ORDER BY name");
            let query = sqlx::query_as(&sql);
            let query = match value {
                Some(v) => query.bind(v),
                None => query,
            };
            let mut accounts: Vec<ServiceAccountRecord> = query.fetch_all(&mut *c).await?;
            for a in &mut accounts {
                a.roles = crate::access::RoleSql::<DB>::roles_of(&mut *c, a.id.into()).await?;
            }
            Ok(accounts)
        }

        /// Inserts a service account and its roles; false when its name or
        /// client id is taken (then, on PostgreSQL, the transaction is spent).
        pub async fn insert_service_account(
            c: &mut DB::Connection,
            a: &ServiceAccountRecord,
        ) -> Result<bool, StoreError> {
            let inserted = sqlx::query(
                "INSERT INTO service_accounts (id, name, client_id, secret_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(a.id)
            .bind(&a.name)
            .bind(&a.client_id)
            .bind(&a.secret_hash)
            .bind(Timestamp(a.created_at))
            .execute(&mut *c)
            .await;
            match inserted {
                Err(e) if DB::violates(&e, NAME_KEY) || DB::violates(&e, CLIENT_ID_KEY) => {
                    return Ok(false);
                }
                other => other?,
            };
            for r in &a.roles {
                sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES ($1, $2)")
                    .bind(a.id)
                    .bind(r)
                    .execute(&mut *c)
                    .await?;
            }
            Ok(true)
        }

        pub async fn service_account_by_client_id(
            c: &mut DB::Connection,
            client_id: &str,
        ) -> Result<Option<ServiceAccountRecord>, StoreError> {
            Ok(
                Self::accounts(&mut *c, "AND client_id = $1", Some(client_id))
                    .await?
                    .pop(),
            )
        }

        pub async fn service_account_by_name(
            c: &mut DB::Connection,
            name: &str,
        ) -> Result<Option<ServiceAccountRecord>, StoreError> {
            Ok(Self::accounts(&mut *c, "AND name = $1", Some(name))
                .await?
                .pop())
        }

        /// The client id of the active account `id`.
        pub async fn client_id_of(
            c: &mut DB::Connection,
            id: ServiceAccountId,
        ) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT client_id FROM service_accounts WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Active service accounts, by name.
        pub async fn list_service_accounts(
            c: &mut DB::Connection,
        ) -> Result<Vec<ServiceAccountRecord>, StoreError> {
            Self::accounts(&mut *c, "", None).await
        }

        /// Disables an account; false when there was no active one.
        pub async fn disable_service_account(
            c: &mut DB::Connection,
            id: ServiceAccountId,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE service_accounts SET disabled_at = $2, roles_changed_at = $2
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}
