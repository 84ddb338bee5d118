//! The handles a use case does its work through: one write transaction over
//! either backend ([`Tx`]), opened once, passed by `&mut` to the SQL functions
//! of every feature it touches, committed once; or a pooled connection for a
//! read ([`Read`]). [`sql!`](crate::sql!) calls a function written once for
//! both backends with the backend of the handle.

use super::Dialect;
use crate::db::Pool;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};

/// A write transaction: on SQLite `BEGIN IMMEDIATE`, so what it reads still
/// holds when it writes; on PostgreSQL the SQL takes the row locks it needs
/// (`Dialect::FOR_UPDATE`). Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// Begins a write transaction on `pool`.
    pub async fn write(pool: &Pool) -> Result<Self, sqlx::Error> {
        Ok(match pool {
            Pool::Postgres(p) => {
                Self::Postgres(p.begin_with(<Postgres as Dialect>::BEGIN_WRITE).await?)
            }
            Pool::Sqlite(p) => Self::Sqlite(p.begin_with(<Sqlite as Dialect>::BEGIN_WRITE).await?),
        })
    }

    /// Makes every write of the transaction durable at once.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(t) => t.commit().await,
            Self::Sqlite(t) => t.commit().await,
        }
    }
}

/// A connection from the pool, for reads that need no transaction (each
/// statement sees the latest commit).
#[derive(Debug)]
pub enum Read {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

impl Read {
    /// Borrows a connection of `pool`.
    pub async fn open(pool: &Pool) -> Result<Self, sqlx::Error> {
        Ok(match pool {
            Pool::Postgres(p) => Self::Postgres(p.acquire().await?),
            Pool::Sqlite(p) => Self::Sqlite(p.acquire().await?),
        })
    }
}

/// The connection of a handle, typed by its backend.
#[derive(Debug)]
pub enum Conn<'a> {
    Postgres(&'a mut PgConnection),
    Sqlite(&'a mut SqliteConnection),
}

/// What [`sql!`](crate::sql!) runs a query function on.
pub trait Handle {
    /// The handle's connection.
    fn conn(&mut self) -> Conn<'_>;
}

impl Handle for Tx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(t) => Conn::Postgres(t),
            Self::Sqlite(t) => Conn::Sqlite(t),
        }
    }
}

impl Handle for Read {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(c) => Conn::Postgres(c),
            Self::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// Calls `Queries::function(args)`, a query function generic over the backend
/// (its first parameter the connection), with the connection of a handle (a
/// `&mut Tx` or `&mut Read`) and awaits it:
/// `sql!(&mut tx, MfaSql::spend_challenge(&hash, now))`; or, for one read on
/// a connection of its own, `sql!(read(&db), KeySql::signing_keys())` (a
/// failure to connect is the function's error type, from `sqlx::Error`); or,
/// for one function that is a whole transaction,
/// `sql!(write(&db), ThrottleSql::reserve(..))` (committed when it returns `Ok`).
#[macro_export]
macro_rules! sql {
    (write($db:expr), $queries:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match $crate::db::Database::write($db).await {
            Ok(mut tx) => match $crate::sql!(&mut tx, $queries::$f($($arg),*)) {
                Ok(done) => tx.commit().await.map(|()| done).map_err(Into::into),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        }
    };
    (read($db:expr), $queries:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match $crate::db::Database::read($db).await {
            Ok(mut handle) => $crate::sql!(&mut handle, $queries::$f($($arg),*)),
            Err(e) => Err(e.into()),
        }
    };
    ($handle:expr, $queries:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match $crate::sql::Handle::conn($handle) {
            $crate::sql::Conn::Postgres(c) => $queries::<::sqlx::Postgres>::$f(c, $($arg),*).await,
            $crate::sql::Conn::Sqlite(c) => $queries::<::sqlx::Sqlite>::$f(c, $($arg),*).await,
        }
    };
}
