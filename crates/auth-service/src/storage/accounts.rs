//! Service accounts: the credentials of internal callers (the secret stored only
//! as its SHA-256) and the roles they hold.

use super::{Sql, StoreError};
use async_trait::async_trait;
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

/// A service account as stored (the secret only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceAccountRecord {
    pub id: ServiceAccountId,
    pub name: String,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    #[sqlx(skip)]
    pub roles: Vec<String>,
}

/// Service accounts.
#[async_trait]
pub trait ServiceAccountStore: Send + Sync + std::fmt::Debug {
    /// Inserts a service account with roles (`Exists`, `NoSuchRole` otherwise).
    async fn insert_service_account(
        &self,
        account: &ServiceAccountRecord,
    ) -> Result<super::Outcome, StoreError>;
    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError>;
    async fn service_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError>;
    /// Active service accounts, by name.
    async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, StoreError>;
    /// Disables an account; false when there was no active one.
    async fn disable_service_account(
        &self,
        id: ServiceAccountId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

const ACCOUNT: &str = "SELECT id, name, client_id, secret_hash, created_at,
                              disabled_at IS NOT NULL AS disabled
                       FROM service_accounts WHERE disabled_at IS NULL";

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// The active accounts `filter` selects (an `AND` clause on `$1`), with roles.
        async fn accounts(
            &self,
            filter: &str,
            value: Option<&str>,
        ) -> Result<Vec<ServiceAccountRecord>, StoreError> {
            let mut tx = self.pool.begin().await?;
            let sql = format!("{ACCOUNT} {filter} ORDER BY name");
            let query = sqlx::query_as(&sql);
            let query = match value {
                Some(v) => query.bind(v),
                None => query,
            };
            let mut accounts: Vec<ServiceAccountRecord> = query.fetch_all(&mut *tx).await?;
            for a in &mut accounts {
                a.roles = Self::roles_of(&mut tx, a.id.uuid()).await?;
            }
            tx.commit().await?;
            Ok(accounts)
        }
    }
}

platform::generic_store! {
    #[async_trait]
    impl<DB> ServiceAccountStore for Sql<DB> {
        async fn insert_service_account(
            &self,
            a: &ServiceAccountRecord,
        ) -> Result<super::Outcome, StoreError> {
            use super::Outcome;
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            for r in &a.roles {
                let exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)")
                        .bind(r)
                        .fetch_one(&mut *tx)
                        .await?;
                if !exists {
                    return Ok(Outcome::NoSuchRole);
                }
            }
            let inserted = sqlx::query(
                "INSERT INTO service_accounts (id, name, client_id, secret_hash, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(a.id)
            .bind(&a.name)
            .bind(&a.client_id)
            .bind(&a.secret_hash)
            .bind(Timestamp(a.created_at))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if DB::violates(&e, NAME_KEY) || DB::violates(&e, CLIENT_ID_KEY) => {
                    return Ok(Outcome::Exists);
                }
                other => other?,
            };
            for r in &a.roles {
                sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES ($1, $2)")
                    .bind(a.id)
                    .bind(r)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Outcome::Done)
        }

        async fn service_account_by_client_id(
            &self,
            client_id: &str,
        ) -> Result<Option<ServiceAccountRecord>, StoreError> {
            Ok(self.accounts("AND client_id = $1", Some(client_id)).await?.pop())
        }

        async fn service_account_by_name(
            &self,
            name: &str,
        ) -> Result<Option<ServiceAccountRecord>, StoreError> {
            Ok(self.accounts("AND name = $1", Some(name)).await?.pop())
        }

        async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, StoreError> {
            self.accounts("", None).await
        }

        async fn disable_service_account(
            &self,
            id: ServiceAccountId,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE service_accounts SET disabled_at = $2, roles_changed_at = $2
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .bind(Timestamp(now))
            .execute(&self.pool)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}
