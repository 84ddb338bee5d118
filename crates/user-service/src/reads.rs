//! Single-user reads coalesced into one query under load: GetUser requests
//! that arrive while earlier reads are still at the database wait for a free
//! slot and are then answered together by one `WHERE id IN (...)`, instead of
//! costing a round trip, a pool checkout and a database process wake-up each.
//! At low load a read goes out alone and at once. Every read is sent after its
//! request arrived, so it sees whatever was committed before, as a lone query
//! would.

use crate::storage::{Sql, StoreError, UserRecord};
use platform::db::Database;
use platform::ids::UserId;
use platform::tasks::Jobs;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Reads at the database at once; those arriving meanwhile queue and go out
/// together in the next one. Fewer means bigger batches and fewer round trips,
/// more means less waiting at low concurrency.
const SLOTS: usize = 4;
/// Largest batch (the ids of one query).
const MAX_BATCH: usize = 128;
/// Reads waiting for a slot before callers wait to enqueue.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<Option<UserRecord>, StoreError>>;

/// The handle GetUser reads go through.
#[derive(Debug, Clone)]
pub struct Reads {
    queue: mpsc::Sender<(UserId, Reply)>,
    db: Database,
    /// The batching loop and its batches in flight.
    jobs: Jobs,
}

impl Reads {
    /// Starts the batching task (it ends when every handle is dropped).
    pub fn spawn(db: Database) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        // The loop and a batch per slot (twice: a batch releases its slot just
        // before it ends).
        let jobs = Jobs::new(2 * SLOTS + 1);
        jobs.spawn("read batching", batch_loop(db.clone(), rx, jobs.clone()));
        Self { queue, db, jobs }
    }

    /// Waits a little for the batches in flight (at shutdown).
    pub async fn finish(&self) {
        self.jobs.join(std::time::Duration::from_secs(5)).await;
    }

    /// The active user `id`, if any.
    pub async fn get(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send((id, reply)).await.is_err() {
            return read_one(&self.db, id).await;
        }
        match answer.await {
            Ok(result) => result,
            // The batching task is gone (shutting down): read alone.
            Err(_) => read_one(&self.db, id).await,
        }
    }
}

async fn batch_loop(db: Database, mut rx: mpsc::Receiver<(UserId, Reply)>, jobs: Jobs) {
    let slots = Arc::new(Semaphore::new(SLOTS));
    loop {
        // A slot first, then whatever queued while none was free.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let db = db.clone();
        // A slot is held, so there is room: the loop and SLOTS batches.
        jobs.spawn("read batch", async move {
            answer(&db, batch).await;
            drop(slot);
        });
    }
}

async fn answer(db: &Database, batch: Vec<(UserId, Reply)>) {
    let ids: Vec<UserId> = batch.iter().map(|(id, _)| *id).collect();
    match read_many(db, &ids).await {
        Ok(found) => {
            let by_id: HashMap<UserId, UserRecord> = found.into_iter().map(|u| (u.id, u)).collect();
            for (id, reply) in batch {
                let _ = reply.send(Ok(by_id.get(&id).cloned()));
            }
        }
        // Each caller gets its own answer and its own error (errors are not
        // shareable, and a lone retry may well succeed).
        Err(_) => {
            for (id, reply) in batch {
                let _ = reply.send(read_one(db, id).await);
            }
        }
    }
}

/// The active user `id`, read on a connection of its own.
async fn read_one(db: &Database, id: UserId) -> Result<Option<UserRecord>, StoreError> {
    let mut conn = db.read().await?;
    platform::sql!(&mut conn, Sql::get_user(id))
}

/// The active users among `ids`, in one query.
async fn read_many(db: &Database, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError> {
    let mut conn = db.read().await?;
    platform::sql!(&mut conn, Sql::get_users(ids))
}
