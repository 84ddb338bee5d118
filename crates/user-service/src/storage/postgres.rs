//! The PostgreSQL store: the production backend.

use super::{StoreError, UserRecord, UserStore, Written};
use crate::domain::Filter;
use crate::domain::filter::like_prefix;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::outbox::{OutboxEvent, OutboxStore, PgOutbox};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};
use std::sync::Arc;
use uuid::Uuid;

const COLUMNS: &str = "id, email, username, display_name, avatar_url, bio, locale, time_zone, \
                       version, created_at, updated_at";

/// A pool of connections to the User Service's PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The user with this id, deleted or not.
    async fn any_user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    async fn exists(&self, id: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL)",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }
}

fn user(r: &PgRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        avatar_url: r.try_get("avatar_url")?,
        bio: r.try_get("bio")?,
        locale: r.try_get("locale")?,
        time_zone: r.try_get("time_zone")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn username_taken(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.constraint() == Some("users_username_key"))
}

#[async_trait]
impl UserStore for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, u: &UserRecord) -> Result<(UserRecord, bool), StoreError> {
        let inserted = sqlx::query(&format!(
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
        .bind(u.created_at)
        .bind(u.updated_at)
        .fetch_optional(&self.pool)
        .await;
        let clash = match inserted {
            Ok(Some(row)) => return Ok((user(&row)?, true)),
            // The id exists: a redelivery.
            Ok(None) => StoreError::Database(sqlx::Error::RowNotFound),
            // A redelivery whose username check fired before its id check, or a
            // real clash with another user.
            Err(e) if username_taken(&e) => StoreError::UsernameTaken,
            Err(e) => return Err(e.into()),
        };
        match self.any_user(u.id).await? {
            Some(existing) => Ok((existing, false)),
            None => Err(clash),
        }
    }

    async fn get_user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    async fn get_users(&self, ids: &[Uuid]) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE id = ANY($1) AND deleted_at IS NULL"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
    }

    async fn list_users(
        &self,
        filter: &Filter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let (condition, value) = match filter {
            Filter::All => ("TRUE", String::new()),
            Filter::UsernameIs(v) => ("username = $3", v.clone()),
            Filter::UsernamePrefix(p) => (r"username LIKE $3 ESCAPE '\'", like_prefix(p)),
            Filter::DisplayNamePrefix(p) => {
                (r"lower(display_name) LIKE $3 ESCAPE '\'", like_prefix(p))
            }
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND id > $1 AND {condition}
             ORDER BY id LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(limit);
        if !matches!(filter, Filter::All) {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(user).collect::<Result<_, _>>()?)
    }

    async fn update_user(&self, u: &UserRecord) -> Result<Written<UserRecord>, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE users SET username = $3, display_name = $4, avatar_url = $5, bio = $6,
                 locale = $7, time_zone = $8, updated_at = $9, version = version + 1
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
        .bind(u.updated_at)
        .fetch_optional(&self.pool)
        .await;
        match updated {
            Ok(Some(row)) => Ok(Written::Done(user(&row)?)),
            Ok(None) if self.exists(u.id).await? => Ok(Written::Stale),
            Ok(None) => Ok(Written::NotFound),
            Err(e) if username_taken(&e) => Err(StoreError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_user(
        &self,
        id: Uuid,
        version: Option<i64>,
        now: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "UPDATE users SET deleted_at = $3, updated_at = $3, version = version + 1
             WHERE id = $1 AND deleted_at IS NULL AND ($2::BIGINT IS NULL OR version = $2)",
        )
        .bind(id)
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            drop(tx);
            return Ok(if self.exists(id).await? {
                Written::Stale
            } else {
                Written::NotFound
            });
        }
        PgOutbox::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Written::Done(()))
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(PgOutbox::new(self.pool.clone()))
    }
}
