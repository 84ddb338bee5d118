//! [`AccessStore`] on SQLite (times as microseconds since the epoch).

use super::{SqliteStore, micros, time};
use crate::storage::{
    AccessStore, AuditQuery, AuditRecord, Counter, IdentityRecord, Outcome, RoleRecord,
    ServiceAccountRecord, SessionRecord, StoreError, SubjectChange,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

fn role(r: &SqliteRow) -> Result<RoleRecord, StoreError> {
    let permissions: String = r.try_get("permissions")?;
    Ok(RoleRecord {
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        permissions: serde_json::from_str(&permissions).unwrap_or_default(),
        builtin: r.try_get("builtin")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
    })
}

fn session(r: &SqliteRow) -> Result<SessionRecord, sqlx::Error> {
    Ok(SessionRecord {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        created_at: time(r, "created_at")?,
        last_used_at: time(r, "last_used_at")?,
        client_address: r.try_get("client_address")?,
        user_agent: r.try_get("user_agent")?,
    })
}

fn audit(r: &SqliteRow) -> Result<AuditRecord, sqlx::Error> {
    let details: String = r.try_get("details")?;
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: time(r, "at")?,
        kind: r.try_get("kind")?,
        actor_id: r.try_get("actor_id")?,
        subject: r.try_get("subject")?,
        client_address: r.try_get("client_address")?,
        details: serde_json::from_str(&details).unwrap_or_default(),
    })
}

fn counter(r: &SqliteRow) -> Result<Counter, sqlx::Error> {
    Ok(Counter {
        count: r.try_get("count")?,
        window_start: time(r, "window_start")?,
        updated_at: time(r, "updated_at")?,
    })
}

impl SqliteStore {
    async fn account(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT id, name, client_id, secret_hash, created_at, disabled_at IS NOT NULL AS disabled
             FROM service_accounts WHERE {column} = ?1 AND disabled_at IS NULL"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id: Uuid = r.try_get("id")?;
        Ok(Some(ServiceAccountRecord {
            id,
            name: r.try_get("name")?,
            client_id: r.try_get("client_id")?,
            secret_hash: r.try_get("secret_hash")?,
            created_at: time(&r, "created_at")?,
            disabled: r.try_get("disabled")?,
            roles: self.roles_of(id).await?,
        }))
    }

    async fn roles_of(&self, subject: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = ?1 ORDER BY role",
            )
            .bind(subject)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    async fn subject_exists(&self, subject: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM identities WHERE id = ?1)
                 OR EXISTS (SELECT 1 FROM service_accounts WHERE id = ?1 AND disabled_at IS NULL)",
        )
        .bind(subject)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn mark_roles_changed(
        &self,
        subject: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE identities SET roles_changed_at = ?2 WHERE id = ?1")
            .bind(subject)
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE service_accounts SET roles_changed_at = ?2 WHERE id = ?1")
            .bind(subject)
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM roles ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(role).collect()
    }

    async fn create_role(&self, r: &RoleRecord) -> Result<Outcome, StoreError> {
        let done = sqlx::query(
            "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&r.name)
        .bind(&r.description)
        .bind(serde_json::to_string(&r.permissions).unwrap_or_default())
        .bind(micros(r.created_at))
        .execute(&self.pool)
        .await?;
        Ok(if done.rows_affected() == 1 {
            Outcome::Done
        } else {
            Outcome::Exists
        })
    }

    async fn update_role(
        &self,
        name: &str,
        description: &str,
        permissions: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<RoleRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE roles SET description = ?2, permissions = ?3, updated_at = ?4 WHERE name = ?1
             RETURNING *",
        )
        .bind(name)
        .bind(description)
        .bind(serde_json::to_string(permissions).unwrap_or_default())
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(role).transpose()
    }

    async fn delete_role(&self, name: &str, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
        let builtin: Option<bool> = sqlx::query_scalar("SELECT builtin FROM roles WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match builtin {
            None => return Ok(Outcome::NoSuchRole),
            Some(true) => return Ok(Outcome::Builtin),
            Some(false) => {}
        }
        let mut tx = self.pool.begin().await?;
        for table in ["identities", "service_accounts"] {
            sqlx::query(&format!(
                "UPDATE {table} SET roles_changed_at = ?2
                 WHERE id IN (SELECT subject_id FROM subject_roles WHERE role = ?1)"
            ))
            .bind(name)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM roles WHERE name = ?1 AND builtin = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Outcome::Done)
    }

    async fn assign_role(
        &self,
        subject: Uuid,
        role_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        if !self.subject_exists(subject).await? {
            return Ok(Outcome::NoSuchSubject);
        }
        let inserted = sqlx::query(
            "INSERT INTO subject_roles (subject_id, role) SELECT ?1, name FROM roles WHERE name = ?2
             ON CONFLICT DO NOTHING",
        )
        .bind(subject)
        .bind(role_name)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = ?1)")
                    .bind(role_name)
                    .fetch_one(&self.pool)
                    .await?;
            return Ok(if exists {
                Outcome::Done
            } else {
                Outcome::NoSuchRole
            });
        }
        self.mark_roles_changed(subject, now).await?;
        Ok(Outcome::Done)
    }

    async fn unassign_role(
        &self,
        subject: Uuid,
        role_name: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        if !self.subject_exists(subject).await? {
            return Ok(Outcome::NoSuchSubject);
        }
        let deleted = sqlx::query("DELETE FROM subject_roles WHERE subject_id = ?1 AND role = ?2")
            .bind(subject)
            .bind(role_name)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() > 0 {
            self.mark_roles_changed(subject, now).await?;
        }
        Ok(Outcome::Done)
    }

    async fn subject_roles(&self, subject: Uuid) -> Result<Option<Vec<String>>, StoreError> {
        // One round trip when the subject holds roles (every login and refresh);
        // a second only to tell "no roles" from "no such subject".
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM subject_roles WHERE subject_id = ?1
               AND (EXISTS (SELECT 1 FROM identities WHERE id = ?1)
                    OR EXISTS (SELECT 1 FROM service_accounts WHERE id = ?1 AND disabled_at IS NULL))
             ORDER BY role",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        if roles.is_empty() && !self.subject_exists(subject).await? {
            return Ok(None);
        }
        Ok(Some(roles))
    }

    async fn subject_changes_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<SubjectChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, roles_changed_at, disabled_at IS NOT NULL AS disabled FROM identities
             WHERE roles_changed_at >= ?1
             UNION ALL
             SELECT id, roles_changed_at, disabled_at IS NOT NULL FROM service_accounts
             WHERE roles_changed_at >= ?1",
        )
        .bind(micros(since))
        .fetch_all(&self.pool)
        .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for r in rows {
            let subject_id: Uuid = r.try_get("id")?;
            changes.push(SubjectChange {
                subject_id,
                changed_at: time(&r, "roles_changed_at")?,
                disabled: r.try_get("disabled")?,
                roles: self.roles_of(subject_id).await?,
            });
        }
        Ok(changes)
    }

    async fn insert_service_account(
        &self,
        a: &ServiceAccountRecord,
    ) -> Result<Outcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in &a.roles {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = ?1)")
                    .bind(r)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                return Ok(Outcome::NoSuchRole);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO service_accounts (id, name, client_id, secret_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(a.id)
        .bind(&a.name)
        .bind(&a.client_id)
        .bind(&a.secret_hash)
        .bind(micros(a.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(Outcome::Exists);
            }
            other => other?,
        };
        for r in &a.roles {
            sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES (?1, ?2)")
                .bind(a.id)
                .bind(r)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Outcome::Done)
    }

    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        self.account("client_id", client_id).await
    }

    async fn service_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        self.account("name", name).await
    }

    async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM service_accounts WHERE disabled_at IS NULL ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.extend(self.account("name", &n).await?);
        }
        Ok(out)
    }

    async fn disable_service_account(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE service_accounts SET disabled_at = ?2, roles_changed_at = ?2
             WHERE id = ?1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(micros(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn identity_by_id(&self, id: Uuid) -> Result<Option<IdentityRecord>, StoreError> {
        self.identity_where("id", id).await
    }

    async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, created_at, last_used_at, client_address, user_agent FROM sessions
             WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1000",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(session).collect::<Result<_, _>>()?)
    }

    async fn session_owner(&self, session_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = ?1 AND revoked_at IS NULL")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(micros(now))
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_sessions_of(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = ?3, revoke_reason = ?4
             WHERE user_id = ?1 AND revoked_at IS NULL AND (?2 IS NULL OR id <> ?2)
             RETURNING id",
        )
        .bind(user_id)
        .bind(except)
        .bind(micros(now))
        .bind(reason)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Counter, StoreError> {
        let row = sqlx::query(
            "INSERT INTO throttle_counters (key, count, window_start, updated_at) VALUES (?1, 1, ?2, ?2)
             ON CONFLICT (key) DO UPDATE SET
                 count = CASE WHEN throttle_counters.window_start <= ?3 THEN 1
                              ELSE throttle_counters.count + 1 END,
                 window_start = CASE WHEN throttle_counters.window_start <= ?3 THEN ?2
                                     ELSE throttle_counters.window_start END,
                 updated_at = ?2
             RETURNING count, window_start, updated_at",
        )
        .bind(key)
        .bind(micros(now))
        .bind(micros(now - window))
        .fetch_one(&self.pool)
        .await?;
        Ok(counter(&row)?)
    }

    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
        let row = sqlx::query(
            "SELECT count, window_start, updated_at FROM throttle_counters WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(counter).transpose()?)
    }

    async fn clear_counter(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle_counters WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_audit(&self, e: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (id, at, kind, actor_id, subject, client_address, details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(e.id)
        .bind(micros(e.at))
        .bind(&e.kind)
        .bind(&e.actor_id)
        .bind(&e.subject)
        .bind(&e.client_address)
        .bind(serde_json::to_string(&e.details).unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let (before_at, before_id) = q
            .before
            .map_or((None, None), |(t, id)| (Some(micros(t)), Some(id)));
        let rows = sqlx::query(
            "SELECT * FROM audit_events
             WHERE (?1 IS NULL OR kind = ?1)
               AND (?2 IS NULL OR actor_id = ?2 OR subject = ?2)
               AND (?3 IS NULL OR at >= ?3)
               AND (?4 IS NULL OR (at < ?4 OR (at = ?4 AND id < ?5)))
             ORDER BY at DESC, id DESC LIMIT ?6",
        )
        .bind(&q.kind)
        .bind(&q.involving)
        .bind(q.since.map(micros))
        .bind(before_at)
        .bind(before_id)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(audit).collect::<Result<_, _>>()?)
    }
}
