//! The handle a use case does its work through: one write transaction over
//! either backend, opened once, passed by `&mut` to the SQL functions of every
//! feature it touches, committed once. [`sql!`](crate::sql!) calls a function
//! written once for both backends with the backend of the handle.

use super::Dialect;
use crate::db::Pool;
use sqlx::{Postgres, Sqlite, Transaction};

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

/// Calls `Sql::function(args)` of a store generic over the backend with the
/// connection of `tx` (a `&mut Tx`) and awaits it:
/// `sql!(tx, Sql::spend_challenge(&hash, now))`.
#[macro_export]
macro_rules! sql {
    ($tx:expr, $store:ident :: $f:ident ( $($arg:expr),* $(,)? )) => {
        match $tx {
            $crate::sql::Tx::Postgres(t) => $store::<::sqlx::Postgres>::$f(&mut **t, $($arg),*).await,
            $crate::sql::Tx::Sqlite(t) => $store::<::sqlx::Sqlite>::$f(&mut **t, $($arg),*).await,
        }
    };
}
