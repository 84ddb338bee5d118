//! The `users` table, one SQL body for both backends.

use super::{StoreError, UserRecord};
use crate::domain::Filter;
use crate::domain::filter::like_prefix;
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

        /// Active users matching `filter` with ids after `after`, in id order.
        pub async fn list_users(
            conn: &mut DB::Connection,
            filter: &Filter,
            after: Option<UserId>,
            limit: i64,
        ) -> Result<Vec<UserRecord>, StoreError> {
            let (condition, value) = match filter {
                Filter::All => ("TRUE", None),
                Filter::UsernameIs(v) => ("username = $3", Some(v.clone())),
                Filter::UsernamePrefix(p) => (r"username LIKE $3 ESCAPE '\'", Some(like_prefix(p))),
                Filter::DisplayNamePrefix(p) => {
                    (r"lower(display_name) LIKE $3 ESCAPE '\'", Some(like_prefix(p)))
                }
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND id > $1 AND {condition}
                 ORDER BY id LIMIT $2"
            );
            let query = sqlx::query_as(&sql)
                .bind(after.map_or(Uuid::nil(), UserId::uuid))
                .bind(limit);
            let query = match value {
                Some(v) => query.bind(v),
                None => query,
            };
            Ok(query.fetch_all(conn).await?)
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
