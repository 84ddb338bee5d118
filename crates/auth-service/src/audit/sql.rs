//! The audit log: who did what to whom, from where, newest first.

use super::model::*;
use crate::storage::StoreError;
use platform::sql::{SqlType, Timestamp};
use sqlx::types::Json;
use std::collections::BTreeMap;

/// The audit log.
pub struct AuditSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    types(Json<BTreeMap<String, String>>);
    impl<DB> AuditSql<DB> {
        pub async fn insert_audit(
            c: &mut DB::Connection,
            e: &AuditRecord,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_events (id, at, kind, actor_id, subject, client_address, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id)
            .bind(Timestamp(e.at))
            .bind(&e.kind)
            .bind(&e.actor_id)
            .bind(&e.subject)
            .bind(&e.client_address)
            .bind(Json(e.details.clone()))
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        pub async fn list_audit(
            c: &mut DB::Connection,
            q: &AuditQuery,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            let (before_at, before_id) = q
                .before
                .map_or((None, None), |(t, id)| (Some(Timestamp(t)), Some(id)));
            let sql = format!(
                "SELECT * FROM audit_events
                 WHERE ({} IS NULL OR kind = $1)
                   AND ({} IS NULL OR actor_id = $2 OR subject = $2)
                   AND ({} IS NULL OR at >= $3)
                   AND ({} IS NULL OR (at, id) < ($4, $5))
                 ORDER BY at DESC, id DESC LIMIT $6",
                DB::typed(1, SqlType::Text),
                DB::typed(2, SqlType::Text),
                DB::typed(3, SqlType::Timestamp),
                DB::typed(4, SqlType::Timestamp),
            );
            Ok(sqlx::query_as(&sql)
                .bind(&q.kind)
                .bind(&q.involving)
                .bind(q.since.map(Timestamp))
                .bind(before_at)
                .bind(before_id)
                .bind(q.limit)
                .fetch_all(&mut *c)
                .await?)
        }
    }
}
