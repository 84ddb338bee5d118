//! The security-event log: appended in the transaction of the change each
//! event describes, read in commit order after a position.

use super::model::*;
use crate::storage::StoreError;
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
            kind: SignalKind::from_stored(&kind).ok_or_else(|| corrupt("unknown kind"))?,
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
    }
}
