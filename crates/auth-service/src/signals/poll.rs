//! Poll delivery (RFC 8936) of the feed, for receivers that speak HTTP rather
//! than gRPC: each subscriber (a service account's client id) has a durable
//! position; a poll acknowledges SETs and receives the next batch. A batch is
//! delivered again until every SET in it is acknowledged, and only then does
//! the position move past it, so a receiver that crashes between a poll and
//! its processing loses nothing. Each poll's check-then-act runs in one write
//! transaction over the subscriber's locked row: two polls of one subscriber
//! take turns, never both advancing it.

use super::poll_sql::{PollPosition, PollSql};
use super::{EVENTS_SUBSCRIBE, Logged, Position, SignalSql, Signals};
use crate::access::authz;
use crate::accounts::Accounts;
use crate::audit::ClientInfo;
use crate::error::AuthError;
use platform::ids::ClientId;
use secrecy::SecretString;
use std::collections::HashSet;
use uuid::Uuid;

/// The most SETs one poll returns (`maxEvents` may ask for fewer).
pub const MAX_EVENTS: usize = 1000;
/// What a poll without `maxEvents` returns at most.
pub const DEFAULT_EVENTS: usize = 100;
/// The most jtis one poll acknowledges (`ack`), and the most errors it
/// reports (`setErrs`): a batch holds at most [`MAX_EVENTS`].
pub const MAX_ACKS: usize = MAX_EVENTS;

/// A receiver's error about one SET (`setErrs`): acknowledged like an `ack`
/// (the same SET would fail again), and logged for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError {
    pub jti: Uuid,
    pub err: String,
    pub description: String,
}

/// A poll, checked at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollRequest {
    /// At most this many SETs (0: acknowledge only).
    pub max_events: usize,
    /// Answer at once even with nothing to deliver (no long poll).
    pub return_immediately: bool,
    pub acks: Vec<Uuid>,
    pub errors: Vec<SetError>,
    /// Start over at the oldest event kept: what a subscriber overtaken by
    /// the retention asks for once it has resynchronised by other means.
    pub resync: bool,
}

/// What a poll answers: (jti, SET) in commit order, and whether more wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollAnswer {
    pub sets: Vec<(Uuid, String)>,
    pub more_available: bool,
}

/// One round's outcome: the events to seal, and where the subscriber stands
/// when it got nothing (what a long poll waits to see the head pass).
struct Round {
    events: Vec<Logged>,
    more_available: bool,
    caught_up_at: Option<Option<Position>>,
}

impl Signals<'_> {
    /// The poll subscriber these client credentials name: the account's client
    /// id, when it holds `events:subscribe` (UNAUTHENTICATED for wrong
    /// credentials, PERMISSION_DENIED without the permission).
    pub async fn poll_subscriber(
        &self,
        client_id: &ClientId,
        secret: &SecretString,
        client: &ClientInfo,
    ) -> Result<String, AuthError> {
        let account = Accounts(self.0)
            .authenticate_client(client_id, secret, client)
            .await?;
        let permissions = authz::permissions_of(&account.roles, &self.authz.definitions());
        if !permissions.iter().any(|p| p.grants(EVENTS_SUBSCRIBE)) {
            return Err(AuthError::PermissionDenied(format!(
                "this client lacks the {EVENTS_SUBSCRIBE} permission"
            )));
        }
        Ok(account.client_id)
    }

    /// One RFC 8936 poll by `audience`: applies its acknowledgements, then
    /// answers the unacknowledged SETs of its batch, or the next batch; with
    /// nothing to deliver and `return_immediately` false, waits (up to the
    /// feed's long-poll bound, or shutdown) for an event and answers what is
    /// there then, possibly nothing. OUT_OF_RANGE when the retention has
    /// overtaken the subscriber: it must resynchronise and poll with `resync`.
    pub async fn poll(&self, audience: &str, req: &PollRequest) -> Result<PollAnswer, AuthError> {
        for e in &req.errors {
            tracing::warn!(
                subscriber = audience,
                jti = %e.jti,
                err = %e.err,
                description = %e.description,
                "a poll receiver refused a security event"
            );
        }
        let first = self.round(audience, req).await?;
        let Some(after) = first.caught_up_at.filter(|_| !req.return_immediately) else {
            return self.answer(audience, first);
        };
        if req.max_events == 0 {
            return self.answer(audience, first);
        }
        let mut head = self.feed.watch();
        let moved = async {
            // The head may have passed the position before this receiver
            // subscribed: look before waiting.
            while *head.borrow_and_update() <= after {
                if head.changed().await.is_err() {
                    return false;
                }
            }
            true
        };
        let moved = tokio::select! {
            moved = tokio::time::timeout(self.feed.long_poll, moved) => moved.unwrap_or(false),
            () = self.feed.stop.cancelled() => false,
        };
        if !moved {
            return self.answer(audience, first);
        }
        // The acknowledgements are applied: the second round only reads on.
        let again = PollRequest {
            acks: Vec::new(),
            errors: Vec::new(),
            resync: false,
            ..req.clone()
        };
        let second = self.round(audience, &again).await?;
        self.answer(audience, second)
    }

    /// Seals a round's events for `audience`.
    fn answer(&self, audience: &str, round: Round) -> Result<PollAnswer, AuthError> {
        let sets = round
            .events
            .iter()
            .map(|l| Ok((l.signal.id, self.seal(audience, &l.signal)?)))
            .collect::<Result<_, AuthError>>()?;
        Ok(PollAnswer {
            sets,
            more_available: round.more_available,
        })
    }

    /// Acknowledges, then picks what to deliver, in one write transaction
    /// over the subscriber's locked position.
    async fn round(&self, audience: &str, req: &PollRequest) -> Result<Round, AuthError> {
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        let mut p = platform::sql!(&mut tx, PollSql::lock(audience, now))?;
        // Pruning records the newest position it deleted: a position below
        // it may have missed events, whatever the clocks say.
        let horizon = platform::sql!(&mut tx, SignalSql::horizon())?;
        if req.resync {
            p = PollPosition::start(now);
        } else if p.acked.is_some() && p.acked < horizon {
            return Err(AuthError::OutOfRange(
                "events after this subscriber's position were pruned: resynchronise \
                 (distrust tokens issued before now), then poll with \"resync\": true to \
                 start over at the oldest event kept"
                    .into(),
            ));
        }
        let done: HashSet<Uuid> = req
            .acks
            .iter()
            .copied()
            .chain(req.errors.iter().map(|e| e.jti))
            .collect();
        p.pending.retain(|jti| !done.contains(jti));
        if p.pending.is_empty()
            && let Some((end, at)) = p.batch.take()
        {
            p.acked = Some(end);
            p.acked_at = p.acked_at.max(at);
        }
        let round = match p.batch {
            Some((end, end_at)) => {
                // The batch is still out: its unacknowledged SETs again.
                let page =
                    platform::sql!(&mut tx, SignalSql::read_after(p.acked, MAX_EVENTS as i64))?;
                let mut unacked: Vec<Logged> = page
                    .into_iter()
                    .filter(|l| l.position <= end && p.pending.contains(&l.signal.id))
                    .collect();
                // A pending jti the log no longer has can never be delivered.
                p.pending = unacked.iter().map(|l| l.signal.id).collect();
                let beyond = platform::sql!(&mut tx, SignalSql::read_after(Some(end), 1))?;
                let more = unacked.len() > req.max_events || !beyond.is_empty();
                unacked.truncate(req.max_events);
                if p.pending.is_empty() {
                    p.batch = None;
                    p.acked = Some(end);
                    p.acked_at = p.acked_at.max(end_at);
                }
                Round {
                    events: unacked,
                    more_available: more,
                    caught_up_at: None,
                }
            }
            None => {
                let mut page = platform::sql!(
                    &mut tx,
                    SignalSql::read_after(p.acked, req.max_events as i64 + 1)
                )?;
                let more = page.len() > req.max_events;
                page.truncate(req.max_events);
                let caught_up_at = match page.last() {
                    Some(last) => {
                        p.batch = Some((last.position, last.signal.at));
                        p.pending = page.iter().map(|l| l.signal.id).collect();
                        None
                    }
                    None if !more => {
                        // Nothing after the position, as of now.
                        p.acked_at = p.acked_at.max(now);
                        Some(p.acked)
                    }
                    None => None,
                };
                Round {
                    events: page,
                    more_available: more,
                    caught_up_at,
                }
            }
        };
        platform::sql!(&mut tx, PollSql::store(audience, &p, now))?;
        tx.commit().await?;
        Ok(round)
    }
}
