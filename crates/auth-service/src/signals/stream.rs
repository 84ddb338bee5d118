//! One subscriber's stream: the backlog after its cursor, page by page, then
//! each new event as this replica's poll sees the head move, and a heartbeat
//! whenever it has heard nothing for the heartbeat interval (and once when it
//! has caught up, so a verifier knows when its view is complete). The stream
//! is driven by the subscriber's reads (no task of its own: a slow or gone
//! subscriber costs nothing) and ends at shutdown, to be resumed elsewhere.

use super::{Cursor, Logged, Signals, Subscription};
use crate::context::Context;
use crate::error::AuthError;
use futures::{Stream, StreamExt};
use platform::clock::monotonic_now;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Events read per query.
const PAGE: i64 = 256;

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event, with its SET.
    Event {
        cursor: String,
        logged: Box<Logged>,
        set: String,
    },
    /// Nothing else happened up to `cursor`.
    Heartbeat {
        cursor: String,
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// Where one subscription is.
struct Follower {
    ctx: Arc<Context>,
    sub: Subscription,
    head: watch::Receiver<Option<super::Position>>,
    ready: VecDeque<Delivery>,
    caught_up: bool,
    last_sent: Instant,
    failed: bool,
}

/// The deliveries of `subscription`, ending with the first error or at shutdown.
pub fn serve(
    ctx: Arc<Context>,
    subscription: Subscription,
) -> impl Stream<Item = Result<Delivery, AuthError>> + Send {
    let stop = ctx.feed.stop.clone();
    let follower = Follower {
        head: ctx.feed.watch(),
        ctx,
        sub: subscription,
        ready: VecDeque::new(),
        caught_up: false,
        last_sent: monotonic_now(),
        failed: false,
    };
    futures::stream::unfold(follower, |mut f| async move {
        if f.failed {
            return None;
        }
        let next = f.next().await;
        f.failed = next.is_err();
        Some((next, f))
    })
    .take_until(async move { stop.cancelled().await })
}

impl Follower {
    async fn next(&mut self) -> Result<Delivery, AuthError> {
        loop {
            if let Some(d) = self.ready.pop_front() {
                self.last_sent = monotonic_now();
                return Ok(d);
            }
            self.head.borrow_and_update();
            let full = self.read_page().await?;
            if !self.ready.is_empty() || full {
                continue;
            }
            if !self.caught_up {
                self.caught_up = true;
                return Ok(self.heartbeat());
            }
            // The head may have moved while the page was read: look again.
            if *self.head.borrow() > self.sub.cursor.position {
                continue;
            }
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        return Err(AuthError::Unavailable("the server is shutting down; resume from your cursor".into()));
                    }
                }
                () = sleep_until(self.last_sent + self.ctx.feed.heartbeat) => {
                    self.last_sent = monotonic_now();
                    return Ok(self.heartbeat());
                }
            }
        }
    }

    /// Queues the subscriber's events of the next page; whether it was full.
    async fn read_page(&mut self) -> Result<bool, AuthError> {
        let signals = Signals(&self.ctx);
        let page = signals.page(self.sub.cursor.position, PAGE).await?;
        let full = page.len() as i64 == PAGE;
        for logged in page {
            self.sub.cursor = Cursor {
                position: Some(logged.position),
                at: logged.signal.at,
            };
            if !self.sub.wants(logged.signal.kind) {
                continue;
            }
            let set = signals.seal(&self.sub.audience, &logged.signal)?;
            self.ready.push_back(Delivery::Event {
                cursor: self.sub.cursor.encode(),
                logged: Box::new(logged),
                set,
            });
        }
        Ok(full)
    }

    /// Everything up to the cursor's position was delivered, as of now.
    fn heartbeat(&mut self) -> Delivery {
        let at = self.ctx.clock.now();
        self.sub.cursor.at = self.sub.cursor.at.max(at);
        Delivery::Heartbeat {
            cursor: self.sub.cursor.encode(),
            at,
        }
    }
}
