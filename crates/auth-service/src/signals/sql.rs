//! The security-event log: appended in the transaction of the change each
//! event describes, read in commit order after a position.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::SessionId;
use platform::sql::Timestamp;
use uuid::Uuid;

/// The security-event log.
pub struct SignalSql<DB>(std::marker::PhantomData<DB>);

type Row = (
    i64,
    i64,
    Uuid,
    Timestamp,
    String,
    String,
    String,
    Option<Uuid>,
    String,
);

fn logged(row: Row) -> Result<Logged, StoreError> {
    let (tx, seq, id, at, kind, subject_id, subject_kind, session, detail) = row;
    let corrupt = |what: &str| StoreError::Corrupt(format!("security event {seq}: {what}"));
    Ok(Logged {
        position: Position { tx, seq },
        signal: Signal {
            id,
            at: at.0,
            kind: SignalKind::from_name(&kind).ok_or_else(|| corrupt("unknown kind"))?,
            subject: SignalSubject::from_stored(&subject_id, &subject_kind)
                .ok_or_else(|| corrupt("bad subject"))?,
            session: session.map(SessionId::from_uuid),
            detail: serde_json::from_str(&detail).map_err(|_| corrupt("bad detail"))?,
        },
    })
}

platform::generic_store! {
    impl<DB> SignalSql<DB> {
        /// Appends `signals`, in order, to the log; call it inside the
        /// transaction that makes the change they describe.
        pub async fn emit(
            c: &mut DB::Connection,
            signals: &[Signal],
        ) -> Result<(), StoreError> {
            let sql = format!(
                "INSERT INTO security_events
                 (tx, id, at, kind, subject_id, subject_kind, session_id, detail)
                 VALUES ({}, $1, $2, $3, $4, $5, $6, $7)",
                DB::TX_POSITION
            );
            for s in signals {
                let (subject_id, subject_kind) = s.subject.stored();
                let detail = serde_json::to_string(&s.detail)
                    .map_err(|e| StoreError::Corrupt(format!("security event detail: {e}")))?;
                sqlx::query(&sql)
                    .bind(s.id)
                    .bind(Timestamp(s.at))
                    .bind(s.kind.as_str())
                    .bind(subject_id)
                    .bind(subject_kind)
                    .bind(s.session.map(SessionId::uuid))
                    .bind(detail)
                    .execute(&mut *c)
                    .await?;
            }
            Ok(())
        }

        /// Up to `limit` settled events after `after` (from the oldest kept
        /// when `None`), in commit order, off the position index.
        pub async fn read_after(
            c: &mut DB::Connection,
            after: Option<Position>,
            limit: i64,
        ) -> Result<Vec<Logged>, StoreError> {
            let from = match after {
                Some(_) => "AND (tx, seq) > ($1, $2)",
                None => "",
            };
            let sql = format!(
                "SELECT tx, seq, id, at, kind, subject_id, subject_kind, session_id, detail
                 FROM security_events WHERE tx < {} {from}
                 ORDER BY tx, seq LIMIT $3",
                DB::SETTLED_BELOW
            );
            let rows: Vec<Row> = sqlx::query_as(&sql)
                .bind(after.map(|p| p.tx))
                .bind(after.map(|p| p.seq))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            rows.into_iter().map(logged).collect()
        }

        /// The newest settled position, if any event is kept.
        pub async fn head(c: &mut DB::Connection) -> Result<Option<Position>, StoreError> {
            let sql = format!(
                "SELECT tx, seq FROM security_events WHERE tx < {}
                 ORDER BY tx DESC, seq DESC LIMIT 1",
                DB::SETTLED_BELOW
            );
            let row: Option<(i64, i64)> = sqlx::query_as(&sql).fetch_optional(&mut *c).await?;
            Ok(row.map(|(tx, seq)| Position { tx, seq }))
        }

        /// The snapshot's (xmin, xmax): see `Dialect::SNAPSHOT_BOUNDS`.
        pub async fn snapshot_bounds(c: &mut DB::Connection) -> Result<(i64, i64), StoreError> {
            Ok(sqlx::query_as(DB::SNAPSHOT_BOUNDS).fetch_one(&mut *c).await?)
        }

        /// The newest position pruning deleted, if it deleted any.
        pub async fn horizon(c: &mut DB::Connection) -> Result<Option<Position>, StoreError> {
            let (tx, seq): (i64, i64) =
                sqlx::query_as("SELECT tx, seq FROM security_event_horizon WHERE id = 1")
                    .fetch_one(&mut *c)
                    .await?;
            Ok((tx >= 0).then_some(Position { tx, seq }))
        }

        /// Deletes up to `limit` settled events older than `before`, oldest
        /// first, and moves the horizon past them; call it in a write
        /// transaction, so a reader sees both or neither. Returns how many.
        pub async fn prune(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let batch = format!(
                "SELECT seq FROM security_events WHERE at < $1 AND tx < {}
                 ORDER BY at LIMIT $2",
                DB::SETTLED_BELOW
            );
            let gone: Vec<(i64, i64)> = sqlx::query_as(&format!(
                "DELETE FROM security_events WHERE {} RETURNING tx, seq",
                DB::in_rows("seq", &batch)
            ))
            .bind(Timestamp(before))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
            if let Some((tx, seq)) = gone.iter().max().copied() {
                sqlx::query(
                    "UPDATE security_event_horizon SET tx = $1, seq = $2
                     WHERE id = 1 AND (tx < $1 OR (tx = $1 AND seq < $2))",
                )
                .bind(tx)
                .bind(seq)
                .execute(&mut *c)
                .await?;
            }
            Ok(gone.len() as u64)
        }
    }
}
