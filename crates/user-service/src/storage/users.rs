//! The `users` table, one SQL body for both backends.

use super::{Sql, StoreError, UserRecord, UserStore, Written};
use crate::domain::Filter;
use crate::domain::filter::like_prefix;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::{SqlType, Timestamp, UniqueKey};
use uuid::Uuid;

const COLUMNS: &str = "id, email, username, display_name, avatar_url, bio, locale, time_zone, \
                       version, created_at, updated_at";

/// Usernames are unique among active users (a partial unique index).
const USERNAME_KEY: UniqueKey = UniqueKey {
    name: "users_username_key",
    columns: "users.username",
};

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// The user with this id, deleted or not.
        async fn any_user(
            conn: &mut DB::Connection,
            id: UserId,
        ) -> Result<Option<UserRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(conn)
                .await?)
        }

        /// Whether an active user has this id.
        async fn exists(conn: &mut DB::Connection, id: UserId) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL)",
            )
            .bind(id)
            .fetch_one(conn)
            .await?)
        }
    }
}

platform::generic_store! {
    #[async_trait]
    impl<DB> UserStore for Sql<DB> {
        async fn create_user(&self, u: &UserRecord) -> Result<(UserRecord, bool), StoreError> {
            let inserted: Result<Option<UserRecord>, _> = sqlx::query_as(&format!(
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
            .fetch_optional(&self.pool)
            .await;
            let clash = match inserted {
                Ok(Some(user)) => return Ok((user, true)),
                // The id exists: a redelivery.
                Ok(None) => StoreError::Database(sqlx::Error::RowNotFound),
                // A redelivery whose username check fired before its id check, or a
                // real clash with another user.
                Err(e) if DB::violates(&e, USERNAME_KEY) => StoreError::UsernameTaken,
                Err(e) => return Err(e.into()),
            };
            let mut conn = self.pool.acquire().await?;
            match Self::any_user(&mut conn, u.id).await? {
                Some(existing) => Ok((existing, false)),
                None => Err(clash),
            }
        }

        async fn get_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn get_users(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
            let sql = format!(
                "SELECT {COLUMNS} FROM users WHERE {} AND deleted_at IS NULL",
                DB::id_in("id", 1, ids.len())
            );
            let ids: Vec<Uuid> = ids.iter().map(|id| id.uuid()).collect();
            Ok(DB::bind_ids(sqlx::query_as(&sql), &ids)
                .fetch_all(&self.pool)
                .await?)
        }

        async fn list_users(
            &self,
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
            Ok(query.fetch_all(&self.pool).await?)
        }

        async fn update_user(&self, u: &UserRecord) -> Result<Written<UserRecord>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let updated: Result<Option<UserRecord>, _> = sqlx::query_as(&format!(
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
            .fetch_optional(&mut *tx)
            .await;
            let written = match updated {
                Ok(Some(user)) => Written::Done(user),
                Ok(None) if Self::exists(&mut tx, u.id).await? => Written::Stale,
                Ok(None) => Written::NotFound,
                Err(e) if DB::violates(&e, USERNAME_KEY) => return Err(StoreError::UsernameTaken),
                Err(e) => return Err(e.into()),
            };
            tx.commit().await?;
            Ok(written)
        }

        async fn delete_user(
            &self,
            id: UserId,
            version: Option<i64>,
            now: DateTime<Utc>,
            event: &OutboxEvent,
        ) -> Result<Written<()>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let deleted = sqlx::query(&format!(
                "UPDATE users SET deleted_at = $3, updated_at = $3, version = version + 1
                 WHERE id = $1 AND deleted_at IS NULL AND ({} IS NULL OR version = $2)",
                DB::typed(2, SqlType::BigInt)
            ))
            .bind(id)
            .bind(version)
            .bind(Timestamp(now))
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&deleted) == 0 {
                return Ok(if Self::exists(&mut tx, id).await? {
                    Written::Stale
                } else {
                    Written::NotFound
                });
            }
            SqlOutbox::<DB>::insert(&mut tx, event).await?;
            tx.commit().await?;
            Ok(Written::Done(()))
        }
    }
}
