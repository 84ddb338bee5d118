//! One SQL body for PostgreSQL and SQLite. SQL functions are generic over a [`Dialect`]
//! (implemented for [`sqlx::Postgres`] and [`sqlx::Sqlite`] only): the query text
//! is written once with `$N` placeholders, which both accept, and the handful of
//! real differences between the two dialects are the trait's few items.
//! [`generic_store!`](crate::generic_store) writes the sqlx bounds a generic
//! query type needs, which the compiler cannot infer from `DB: Dialect`.

mod dialect;
mod prune;
pub mod rows;
mod time;
mod tx;

pub use dialect::{Dialect, SqlType, UniqueKey};
pub use prune::Expired;
pub use time::Timestamp;
pub use tx::{Conn, Handle, Read, Tx};

/// Implements the SQL functions of a query type generic over the
/// backend, with the bounds sqlx needs spelled out once here: executing on a
/// connection, binding and decoding the column types the services use, and
/// decoding `#[derive(FromRow)]` records by column name.
///
/// `generic_store! { impl<DB> KeySql<DB> { ... } }`; extra column types, such as
/// a `Json<T>`, follow the keyword `types`: `generic_store! { types(Json<Vec<String>>); impl ... }`.
#[macro_export]
macro_rules! generic_store {
    (types($($extra:ty),* $(,)?); $(#[$attr:meta])* impl<$db:ident> $($rest:tt)*) => {
        $crate::generic_store!(@impl [$($extra),*] [$(#[$attr])*] $db {} $($rest)*);
    };
    ($(#[$attr:meta])* impl<$db:ident> $($rest:tt)*) => {
        $crate::generic_store!(@impl [] [$(#[$attr])*] $db {} $($rest)*);
    };
    // Collects the impl's head (everything before the body) token by token.
    (@impl [$($extra:ty),*] [$($attr:tt)*] $db:ident { $($head:tt)* } { $($body:tt)* }) => {
        $($attr)*
        impl<$db> $($head)*
        where
            $db: $crate::sql::Dialect,
            for<'c> &'c mut <$db as ::sqlx::Database>::Connection: ::sqlx::Executor<'c, Database = $db>,
            for<'q> <$db as ::sqlx::Database>::Arguments<'q>: ::sqlx::IntoArguments<'q, $db>,
            for<'r> &'r str: ::sqlx::ColumnIndex<<$db as ::sqlx::Database>::Row>,
            usize: ::sqlx::ColumnIndex<<$db as ::sqlx::Database>::Row>,
            for<'q> &'q str: ::sqlx::Encode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> &'q [u8]: ::sqlx::Encode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> ::uuid::Uuid: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<::uuid::Uuid>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> String: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<String>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> i64: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<i64>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> i32: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<i32>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> bool: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<bool>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Vec<u8>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<Vec<u8>>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> $crate::sql::Timestamp: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            for<'q> Option<$crate::sql::Timestamp>: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,
            $(for<'q> $extra: ::sqlx::Encode<'q, $db> + ::sqlx::Decode<'q, $db> + ::sqlx::Type<$db>,)*
        {
            $($body)*
        }
    };
    (@impl [$($extra:ty),*] [$($attr:tt)*] $db:ident { $($head:tt)* } $next:tt $($rest:tt)*) => {
        $crate::generic_store!(@impl [$($extra),*] [$($attr)*] $db { $($head)* $next } $($rest)*);
    };
}
