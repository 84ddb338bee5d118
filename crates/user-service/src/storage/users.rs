//! The `users` table, one SQL body for both backends.

use super::{ListCursor, Listed, StoreError, UserRecord};
use crate::domain::Filter;
use crate::domain::filter::prefix_end;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::{SqlType, Timestamp, UniqueKey};
use std::marker::PhantomData;
use uuid::Uuid;

const COLUMNS: &str = "id, email, username, display_name, avatar_url, bio, locale, time_zone, \
                       version, created_at, updated_at";

/// Usernames are unique among active users (a partial unique index).
const USERNAME_KEY: UniqueKey = UniqueKey {
    name: "users_username_key",
    columns: "users.username",
};

/// The SQL of the `users` table on backend `DB`: `Sql::<DB>::get_user(conn, id)`,
/// or `sql!(&mut tx, Sql::get_user(id))` on either.
#[derive(Debug)]
pub struct Sql<DB>(PhantomData<DB>);

/// A username clash, or the database's own error.
fn write_error<DB: platform::sql::Dialect>(e: sqlx::Error) -> StoreError {
    if DB::violates(&e, USERNAME_KEY) {
        StoreError::UsernameTaken
    } else {
        e.into()
    }
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Inserts `u`; `None` when its id exists (deleted or not).
        /// `UsernameTaken` when another active user has the name.
        pub async fn insert_user(
            conn: &mut DB::Connection,
            u: &UserRecord,
        ) -> Result<Option<UserRecord>, StoreError> {
            sqlx::query_as(&format!(
                "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
            ))
            .bind(u.id)
            .bind(&u.email)
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(&u.avatar_url)
            .bind(&u.bio)
            .bind(&u.locale)
            .bind(&u.time_zone)
            .bind(u.version)
            .bind(Timestamp(u.created_at))
            .bind(Timestamp(u.updated_at))
            .fetch_optional(conn)
            .await
            .map_err(write_error::<DB>)
        }

        /// The user with this id, deleted or not.
        pub async fn any_user(
            conn: &mut DB::Connection,
            id: UserId,
        ) -> Result<Option<UserRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(conn)
                .await?)
        }

        /// The active user with this id.
        pub async fn get_user(
            conn: &mut DB::Connection,
            id: UserId,
        ) -> Result<Option<UserRecord>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL"
            ))
            .bind(id)
            .fetch_optional(conn)
            .await?)
        }

        /// The active users among `ids`, in any order.
        pub async fn get_users(
            conn: &mut DB::Connection,
            ids: &[UserId],
        ) -> Result<Vec<UserRecord>, StoreError> {
            let sql = format!(
                "SELECT {COLUMNS} FROM users WHERE {} AND deleted_at IS NULL",
                DB::id_in("id", 1, ids.len())
            );
            let ids: Vec<Uuid> = ids.iter().map(|id| id.uuid()).collect();
            Ok(DB::bind_ids(sqlx::query_as(&sql), &ids)
                .fetch_all(conn)
                .await?)
        }

        /// Up to `limit` active users matching `filter` after `after`: in id
        /// order, or for a prefix in the order of the text it matches (then
        /// the page is one range of that text's index, however few users
        /// match among how many). Only the conditions in play are written, so
        /// a generic plan picks the same index; every value is bound in its
        /// place either way.
        pub async fn list_users(
            conn: &mut DB::Connection,
            filter: &Filter,
            after: Option<&ListCursor>,
            limit: i64,
        ) -> Result<Vec<Listed>, StoreError> {
            let (key, value, end) = match filter {
                Filter::All => (None, None, None),
                Filter::UsernameIs(v) => (None, Some(v.clone()), None),
                Filter::UsernamePrefix(p) => {
                    (Some(DB::bytewise("username")), Some(p.clone()), prefix_end(p))
                }
                Filter::DisplayNamePrefix(p) => (
                    Some(DB::bytewise("lower(display_name)")),
                    Some(p.clone()),
                    prefix_end(p),
                ),
            };
            let mut filter_sql = String::new();
            let order = match &key {
                None => {
                    if value.is_some() {
                        filter_sql.push_str(" AND username = $3");
                    }
                    if after.is_some() {
                        filter_sql.push_str(" AND id > $1");
                    }
                    "id".to_owned()
                }
                Some(key) => {
                    if value.as_deref().is_some_and(|v| !v.is_empty()) {
                        filter_sql.push_str(&format!(" AND {key} >= $3"));
                    }
                    if end.is_some() {
                        filter_sql.push_str(&format!(" AND {key} < $4"));
                    }
                    if after.is_some() {
                        filter_sql.push_str(&format!(" AND ({key}, id) > ($5, $1)"));
                    }
                    format!("{key}, id")
                }
            };
            let sort_key = key.as_deref().unwrap_or("''");
            let sql = format!(
                "SELECT {COLUMNS}, {sort_key} AS sort_key FROM users
                 WHERE deleted_at IS NULL{filter_sql} ORDER BY {order} LIMIT $2"
            );
            Ok(sqlx::query_as(&sql)
                .bind(after.map_or(Uuid::nil(), |a| a.id.uuid()))
                .bind(limit)
                .bind(value)
                .bind(end)
                .bind(after.map(|a| a.key.clone()))
                .fetch_all(conn)
                .await?)
        }

        /// Whether an active user has this id.
        pub async fn exists(conn: &mut DB::Connection, id: UserId) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL)",
            )
            .bind(id)
            .fetch_one(conn)
            .await?)
        }

        /// Replaces the editable fields of the active user `u.id` if it is still
        /// at `u.version`, and returns it at the next version; `None` if it is
        /// not (any more), or is not active. `UsernameTaken` when another active
        /// user has the name.
        pub async fn update_user(
            conn: &mut DB::Connection,
            u: &UserRecord,
        ) -> Result<Option<UserRecord>, StoreError> {
            sqlx::query_as(&format!(
                "UPDATE users SET username = $3, display_name = $4, avatar_url = $5, bio = $6,
                     locale = $7, time_zone = $8, updated_at = $9, email = $10,
                     version = version + 1
                 WHERE id = $1 AND version = $2 AND deleted_at IS NULL
                 RETURNING {COLUMNS}"
            ))
            .bind(u.id)
            .bind(u.version)
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(&u.avatar_url)
            .bind(&u.bio)
            .bind(&u.locale)
            .bind(&u.time_zone)
            .bind(Timestamp(u.updated_at))
            .bind(&u.email)
            .fetch_optional(conn)
            .await
            .map_err(write_error::<DB>)
        }

        /// Marks the active user `id` deleted at `now` if it is at `version`
        /// (at any when `None`); whether it was.
        pub async fn soft_delete(
            conn: &mut DB::Connection,
            id: UserId,
            version: Option<i64>,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let deleted = sqlx::query(&format!(
                "UPDATE users SET deleted_at = $3, updated_at = $3, version = version + 1
                 WHERE id = $1 AND deleted_at IS NULL AND ({} IS NULL OR version = $2)",
                DB::typed(2, SqlType::BigInt)
            ))
            .bind(id)
            .bind(version)
            .bind(Timestamp(now))
            .execute(conn)
            .await?;
            Ok(DB::rows_affected(&deleted) != 0)
        }
    }
}
