//! The audit log: who did what to whom, from where, newest first.

use super::model::*;
use crate::storage::StoreError;
use platform::sql::Timestamp;
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

        /// Events matching `q`, newest first. The WHERE names only the filters
        /// present (every value is bound in its place either way), so even a
        /// generic plan can use the index the filter needs; "involving" reads
        /// the actor's and the subject's indexes, a page from each, and merges.
        pub async fn list_audit(
            c: &mut DB::Connection,
            q: &AuditQuery,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            let (before_at, before_id) = q
                .before
                .map_or((None, None), |(t, id)| (Some(Timestamp(t)), Some(id)));
            let mut filter = String::new();
            if q.kind.is_some() {
                filter.push_str(" AND kind = $1");
            }
            if q.since.is_some() {
                filter.push_str(" AND at >= $3");
            }
            if q.before.is_some() {
                filter.push_str(" AND (at, id) < ($4, $5)");
            }
            const NEWEST: &str = "ORDER BY at DESC, id DESC LIMIT $6";
            let sql = match q.involving {
                None => format!("SELECT * FROM audit_events WHERE TRUE{filter} {NEWEST}"),
                // An event whose actor is also its subject comes from the first.
                Some(_) => format!(
                    "SELECT * FROM (SELECT * FROM audit_events WHERE actor_id = $2{filter} {NEWEST})
                         AS by_them
                     UNION ALL
                     SELECT * FROM (SELECT * FROM audit_events
                                    WHERE subject = $2 AND (actor_id IS NULL OR actor_id <> $2)
                                    {filter} {NEWEST}) AS to_them
                     {NEWEST}"
                ),
            };
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
