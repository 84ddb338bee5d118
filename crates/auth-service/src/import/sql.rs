//! The rows an import reads and writes, a batch at a time: a few statements
//! per batch of lines, whatever its size, within the parameter limit both
//! backends share (`platform::sql::rows`).

use super::Ready;
use crate::credentials::sql::EMAIL_KEY;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::rows::{params, rows_per_statement, values};
use platform::sql::{Timestamp, UniqueKey};
use uuid::Uuid;

const EXTERNAL_ID_KEY: UniqueKey = UniqueKey {
    name: "identities_external_id_key",
    columns: "identities.external_id",
};

/// Who holds an address: (canonical email, the external id it was imported
/// under, the import run that brought it), the last two if an import did.
pub type Holder = (String, Option<String>, Option<Uuid>);

/// Imported identities.
pub struct ImportSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> ImportSql<DB> {
        /// The identities at any of `emails` (canonical).
        pub async fn holders(
            c: &mut DB::Connection,
            emails: &[&str],
        ) -> Result<Vec<Holder>, StoreError> {
            let mut found = Vec::new();
            for chunk in emails.chunks(rows_per_statement(1, 0)) {
                let sql = format!(
                    "SELECT email, external_id, import_run FROM identities WHERE email IN ({})",
                    params(1, chunk.len())
                );
                let query = chunk.iter().fold(sqlx::query_as(&sql), |q, e| q.bind(*e));
                found.extend(query.fetch_all(&mut *c).await?);
            }
            Ok(found)
        }

        /// Which of `external_ids` an identity was imported under.
        pub async fn external_ids_taken(
            c: &mut DB::Connection,
            external_ids: &[&str],
        ) -> Result<Vec<String>, StoreError> {
            Self::present(c, "identities", "external_id", external_ids).await
        }

        /// Which of `names` are roles.
        pub async fn existing_roles(
            c: &mut DB::Connection,
            names: &[&str],
        ) -> Result<Vec<String>, StoreError> {
            Self::present(c, "roles", "name", names).await
        }

        /// Which of `values` `table.column` holds, a statement per chunk
        /// (`table` and `column` are this module's constants, never input).
        async fn present(
            c: &mut DB::Connection,
            table: &str,
            column: &str,
            values: &[&str],
        ) -> Result<Vec<String>, StoreError> {
            let mut found = Vec::new();
            for chunk in values.chunks(rows_per_statement(1, 0)) {
                let sql = format!(
                    "SELECT {column} FROM {table} WHERE {column} IN ({})",
                    params(1, chunk.len())
                );
                let query = chunk.iter().fold(sqlx::query_scalar(&sql), |q, v| q.bind(*v));
                found.extend(query.fetch_all(&mut *c).await?);
            }
            Ok(found)
        }

        /// Inserts `lines` as identities imported by `run`, with their verified
        /// flag and external id; false when another writer took one of their
        /// addresses or external ids meanwhile (the transaction is then spoilt:
        /// the caller rolls it back).
        pub(crate) async fn insert_identities(
            c: &mut DB::Connection,
            lines: &[&Ready],
            (run, now): (Uuid, DateTime<Utc>),
        ) -> Result<bool, StoreError> {
            // $1 and $2 (when and by which run) are shared by every row.
            const PER_ROW: usize = 7;
            for chunk in lines.chunks(rows_per_statement(PER_ROW, 2)) {
                let values = values(chunk.len(), PER_ROW, 3, |n| {
                    format!("({}, ${}, $1, $2)", params(n, PER_ROW), n + 6)
                });
                let sql = format!(
                    "INSERT INTO identities (id, email, display_name, password_hash, email_verified,
                                             external_id, created_at, updated_at, imported_at,
                                             import_run)
                     VALUES {values}"
                );
                let query = sqlx::query(&sql).bind(Timestamp(now)).bind(run);
                let query = chunk.iter().fold(query, |q, line| {
                    let identity = &line.identity;
                    q.bind(identity.id)
                        .bind(&identity.email)
                        .bind(&identity.display_name)
                        .bind(&identity.password_hash)
                        .bind(line.email_verified)
                        .bind(&line.external_id)
                        .bind(Timestamp(identity.created_at))
                });
                match query.execute(&mut *c).await {
                    Err(e) if DB::violates(&e, EMAIL_KEY) || DB::violates(&e, EXTERNAL_ID_KEY) => {
                        return Ok(false);
                    }
                    other => other?,
                };
            }
            Ok(true)
        }

        /// Gives each identity its role: (identity, role name) pairs.
        pub async fn insert_roles(
            c: &mut DB::Connection,
            pairs: &[(UserId, &str)],
        ) -> Result<(), StoreError> {
            for chunk in pairs.chunks(rows_per_statement(2, 0)) {
                let values = values(chunk.len(), 2, 1, |n| format!("({})", params(n, 2)));
                let sql = format!("INSERT INTO subject_roles (subject_id, role) VALUES {values}");
                let query = chunk
                    .iter()
                    .fold(sqlx::query(&sql), |q, (id, role)| q.bind(*id).bind(*role));
                query.execute(&mut *c).await?;
            }
            Ok(())
        }

        /// Refreshes the planner's statistics of the tables an import fills, so
        /// that the queries over them (logins, the role and revocation pollers)
        /// are planned for their new size, not the one before the load.
        pub async fn analyze(c: &mut DB::Connection) -> Result<(), StoreError> {
            // One table per statement: SQLite's ANALYZE takes one name.
            for table in ["identities", "subject_roles", "outbox"] {
                sqlx::query(&format!("ANALYZE {table}")).execute(&mut *c).await?;
            }
            Ok(())
        }
    }
}
