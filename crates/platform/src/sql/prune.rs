//! One bounded delete for every pruning job: rows of a table whose time column
//! is before a cutoff, at most `limit` of them, in one statement, so no table is
//! locked for long (callers loop with [`crate::tasks::in_batches`]).

use super::{Dialect, Timestamp};
use chrono::{DateTime, Utc};

/// Which rows of which table a pruning job deletes.
#[derive(Debug, Clone, Copy)]
pub struct Expired {
    pub table: &'static str,
    /// The table's key, to pick the batch.
    pub key: &'static str,
    /// The time column compared with the cutoff.
    pub column: &'static str,
}

impl Expired {
    /// Deletes up to `limit` rows whose `column` is before `before`, oldest
    /// first; returns how many. The order is what keeps the plan on the
    /// column's index even when it is generic: with no cutoff to estimate
    /// by, a plain `LIMIT` looks cheapest as a table scan that stops early,
    /// which reads the whole table on the pass that finds nothing to delete.
    pub async fn delete<'c, DB, E>(
        self,
        executor: E,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, sqlx::Error>
    where
        DB: Dialect,
        E: sqlx::Executor<'c, Database = DB>,
        for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
        for<'q> Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let Self { table, key, column } = self;
        let batch =
            format!("SELECT {key} FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2");
        let sql = format!("DELETE FROM {table} WHERE {}", DB::in_rows(key, &batch));
        let done = sqlx::query(&sql)
            .bind(Timestamp(before))
            .bind(limit)
            .execute(executor)
            .await?;
        Ok(DB::rows_affected(&done))
    }
}
