//! The few places where PostgreSQL and SQLite really differ, named once.

use sqlx::query::QueryAs;
use sqlx::{Database, Postgres, Sqlite};
use uuid::Uuid;

/// The type of a parameter that may be NULL, for the dialects that must be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Uuid,
    Text,
    BigInt,
    Timestamp,
}

/// A unique constraint as each backend reports its violation: PostgreSQL by the
/// constraint's (or unique index's) name, SQLite by `table.column` list, or by the
/// index name for a partial unique index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueKey {
    /// The constraint or unique index name (both backends' schemas use it).
    pub name: &'static str,
    /// SQLite's `table.column[, table.column]` for a plain UNIQUE column list.
    pub columns: &'static str,
}

/// A backend the stores run on: PostgreSQL or SQLite, nothing else.
pub trait Dialect: Database + private::Sealed {
    /// Appended to the inner `SELECT` of a claim so that concurrent claimers skip
    /// each other's rows. Empty on SQLite, which has one writer at a time, so the
    /// claiming `UPDATE` alone is exclusive.
    const SKIP_LOCKED: &'static str;

    /// Appended to a `SELECT` whose rows the transaction goes on to change on the
    /// strength of what it read (check-then-act). Empty on SQLite, where
    /// [`Dialect::BEGIN_WRITE`] already holds the database's one write lock.
    const FOR_UPDATE: &'static str;

    /// Starts a transaction that reads and then writes. SQLite must take its write
    /// lock up front: a deferred transaction that upgrades from reading fails at
    /// once with SQLITE_BUSY instead of waiting for the lock.
    const BEGIN_WRITE: &'static str;

    /// The writing transaction's place in a commit-ordered log (rows are then
    /// ordered by it and their own sequence number): PostgreSQL's transaction
    /// id; 0 on SQLite, whose one writer at a time makes the sequence number
    /// alone commit order.
    const TX_POSITION: &'static str;

    /// Log rows whose transaction position is below this are final: every
    /// transaction that could still add one has ended. PostgreSQL: the
    /// oldest transaction still running (`pg_snapshot_xmin`); SQLite: all.
    const SETTLED_BELOW: &'static str;

    /// Parameter `$n`, typed where the dialect cannot infer the type of a NULL
    /// (`$n IS NULL OR ...` filters).
    fn typed(n: usize, ty: SqlType) -> String;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Whether `e` violates `key`.
    fn violates(e: &sqlx::Error, key: UniqueKey) -> bool;

    /// `expr` compared and ordered byte by byte (code point by code point), so
    /// that a prefix is one range of an index on the same expression: SQLite's
    /// default; PostgreSQL's "C" collation, where a locale's would not do.
    fn bytewise(expr: &str) -> String;

    /// `column` is one of the values `select` returns, planned as lookups of
    /// those few values: PostgreSQL evaluates `= ANY(ARRAY(...))` once and
    /// looks each up by `column`'s index, where a generic plan of `IN (...)`
    /// may hash-join against a scan of the whole table.
    fn in_rows(column: &str, select: &str) -> String;

    /// `column` is one of the ids bound by [`Dialect::bind_ids`] from parameter `$first` on.
    fn id_in(column: &str, first: usize, count: usize) -> String;

    /// Binds `ids` for [`Dialect::id_in`].
    fn bind_ids<'q, O>(
        query: QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>>,
        ids: &'q [Uuid],
    ) -> QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>>;
}

impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BEGIN_WRITE: &'static str = "BEGIN";
    const TX_POSITION: &'static str = "pg_current_xact_id()::text::bigint";
    const SETTLED_BELOW: &'static str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    fn typed(n: usize, ty: SqlType) -> String {
        let name = match ty {
            SqlType::Uuid => "UUID",
            SqlType::Text => "TEXT",
            SqlType::BigInt => "BIGINT",
            SqlType::Timestamp => "TIMESTAMPTZ",
        };
        format!("${n}::{name}")
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn violates(e: &sqlx::Error, key: UniqueKey) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.constraint() == Some(key.name))
    }

    fn bytewise(expr: &str) -> String {
        format!("({expr}) COLLATE \"C\"")
    }

    fn in_rows(column: &str, select: &str) -> String {
        format!("{column} = ANY(ARRAY({select}))")
    }

    fn id_in(column: &str, first: usize, _count: usize) -> String {
        format!("{column} = ANY(${first})")
    }

    fn bind_ids<'q, O>(
        query: QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>>,
        ids: &'q [Uuid],
    ) -> QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>> {
        query.bind(ids)
    }
}

impl Dialect for Sqlite {
    const SKIP_LOCKED: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const TX_POSITION: &'static str = "0";
    const SETTLED_BELOW: &'static str = "9223372036854775807";

    fn typed(n: usize, _ty: SqlType) -> String {
        format!("${n}")
    }

    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }

    fn violates(e: &sqlx::Error, key: UniqueKey) -> bool {
        let sqlx::Error::Database(db) = e else {
            return false;
        };
        if !db.is_unique_violation() {
            return false;
        }
        // "UNIQUE constraint failed: users.username" or "...: index 'name'".
        let failed = db.message().rsplit(": ").next().unwrap_or_default();
        failed == key.columns || failed == format!("index '{}'", key.name)
    }

    fn bytewise(expr: &str) -> String {
        expr.to_owned()
    }

    fn in_rows(column: &str, select: &str) -> String {
        format!("{column} IN ({select})")
    }

    fn id_in(column: &str, first: usize, count: usize) -> String {
        let params: Vec<String> = (first..first + count.max(1))
            .map(|n| format!("${n}"))
            .collect();
        format!("{column} IN ({})", params.join(", "))
    }

    fn bind_ids<'q, O>(
        query: QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>>,
        ids: &'q [Uuid],
    ) -> QueryAs<'q, Self, O, <Self as Database>::Arguments<'q>> {
        if ids.is_empty() {
            // `IN ($n)` with a NULL matches nothing, like `= ANY('{}')`.
            return query.bind(None::<Uuid>);
        }
        ids.iter().fold(query, |q, id| q.bind(*id))
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for sqlx::Postgres {}
    impl Sealed for sqlx::Sqlite {}
}
