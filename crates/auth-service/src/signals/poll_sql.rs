//! The poll subscribers' positions (RFC 8936): one row per client id, read
//! with a row lock and written back in the same transaction, so that two polls
//! of one subscriber take turns instead of both advancing it.

use super::model::Position;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
use uuid::Uuid;

/// Where a poll subscriber stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPosition {
    /// The last position it acknowledged; `None`: the start of what is kept.
    pub acked: Option<Position>,
    /// The time `acked` stands for (the event's, or when a poll found nothing
    /// after it): older than the retention, events it has not seen may be gone.
    pub acked_at: DateTime<Utc>,
    /// The outbound batch: the position of its last event and that event's time.
    pub batch: Option<(Position, DateTime<Utc>)>,
    /// The jtis of that batch still unacknowledged.
    pub pending: Vec<Uuid>,
}

impl PollPosition {
    /// A subscriber new to poll: the oldest event kept, as of `now`.
    pub fn start(now: DateTime<Utc>) -> Self {
        Self {
            acked: None,
            acked_at: now,
            batch: None,
            pending: Vec::new(),
        }
    }
}

/// The poll subscribers' positions.
pub struct PollSql<DB>(std::marker::PhantomData<DB>);

type Row = (
    Option<i64>,
    Option<i64>,
    Timestamp,
    Option<i64>,
    Option<i64>,
    Option<Timestamp>,
    String,
);

fn position(tx: Option<i64>, seq: Option<i64>) -> Option<Position> {
    Some(Position { tx: tx?, seq: seq? })
}

platform::generic_store! {
    impl<DB> PollSql<DB> {
        /// The position of `client_id`, created at the start as of `now` when
        /// it has none, and locked until the transaction ends (PostgreSQL's
        /// row lock; SQLite's write transaction already excludes other writers).
        pub async fn lock(
            c: &mut DB::Connection,
            client_id: &str,
            now: DateTime<Utc>,
        ) -> Result<PollPosition, StoreError> {
            sqlx::query(
                "INSERT INTO ssf_poll_positions (client_id, pos_at, updated_at)
                 VALUES ($1, $2, $2) ON CONFLICT (client_id) DO NOTHING",
            )
            .bind(client_id)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await?;
            let sql = format!(
                "SELECT pos_tx, pos_seq, pos_at, batch_tx, batch_seq, batch_at, pending
                 FROM ssf_poll_positions WHERE client_id = $1{}",
                DB::FOR_UPDATE
            );
            let (pos_tx, pos_seq, pos_at, batch_tx, batch_seq, batch_at, pending): Row =
                sqlx::query_as(&sql)
                    .bind(client_id)
                    .fetch_one(&mut *c)
                    .await?;
            let pending: Vec<Uuid> = serde_json::from_str(&pending)
                .map_err(|_| StoreError::Corrupt(format!("poll position of {client_id}: pending")))?;
            Ok(PollPosition {
                acked: position(pos_tx, pos_seq),
                acked_at: pos_at.0,
                batch: position(batch_tx, batch_seq).zip(batch_at.map(|t| t.0)),
                pending,
            })
        }

        /// Writes back the position of `client_id` (locked by [`Self::lock`]).
        pub async fn store(
            c: &mut DB::Connection,
            client_id: &str,
            p: &PollPosition,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let pending = serde_json::to_string(&p.pending)?;
            let batch = p.batch.map(|(pos, _)| pos);
            sqlx::query(
                "UPDATE ssf_poll_positions
                 SET pos_tx = $2, pos_seq = $3, pos_at = $4, batch_tx = $5, batch_seq = $6,
                     batch_at = $7, pending = $8, updated_at = $9
                 WHERE client_id = $1",
            )
            .bind(client_id)
            .bind(p.acked.map(|x| x.tx))
            .bind(p.acked.map(|x| x.seq))
            .bind(Timestamp(p.acked_at))
            .bind(batch.map(|x| x.tx))
            .bind(batch.map(|x| x.seq))
            .bind(p.batch.map(|(_, at)| Timestamp(at)))
            .bind(pending)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await?;
            Ok(())
        }
    }
}
