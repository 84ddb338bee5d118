//! Where an import's lines come from: a file or standard input (the CLI), or
//! the messages of a request stream (the admin RPC). Either way lines are
//! taken one at a time, so an import holds one batch, whatever the input's
//! length, and a line is bounded alike.

use crate::error::AuthError;
use futures::{Stream, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The longest line read; the rest of a longer one is skipped, not buffered.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One line, or why it cannot be imported whatever it says (too long, not
/// UTF-8): that line alone is refused.
pub type Line = Result<String, String>;

/// A source of import lines.
pub trait Lines {
    /// The next line, `None` at the end; an error ends the import (lines in
    /// batches already committed stay imported).
    fn next_line(&mut self) -> impl Future<Output = Result<Option<Line>, AuthError>> + Send;
}

impl<R: AsyncBufRead + Unpin + Send> Lines for R {
    async fn next_line(&mut self) -> Result<Option<Line>, AuthError> {
        read_line(self)
            .await
            .map_err(|e| AuthError::FailedPrecondition(format!("the input cannot be read: {e}")))
    }
}

/// Lines that arrive in messages of at most a few hundred; a broken stream
/// is the stream's error (the transport says what the caller did wrong).
pub struct Messages<S> {
    messages: S,
    current: std::vec::IntoIter<String>,
    /// Longest wait for the next message: a caller gone quiet holds one of
    /// the few imports a replica runs.
    idle: Duration,
}

/// How long an import over the RPC waits for its next message.
pub const MESSAGE_IDLE: Duration = Duration::from_secs(60);

impl<S> Messages<S> {
    pub fn new(messages: S) -> Self {
        Self::with_idle(messages, MESSAGE_IDLE)
    }

    fn with_idle(messages: S, idle: Duration) -> Self {
        Self {
            messages,
            current: Vec::new().into_iter(),
            idle,
        }
    }
}

impl<S> Lines for Messages<S>
where
    S: Stream<Item = Result<Vec<String>, AuthError>> + Unpin + Send,
{
    async fn next_line(&mut self) -> Result<Option<Line>, AuthError> {
        loop {
            if let Some(line) = self.current.next() {
                return Ok(Some(if line.len() > MAX_LINE_BYTES {
                    Err(too_long())
                } else {
                    Ok(line)
                }));
            }
            match tokio::time::timeout(self.idle, self.messages.next()).await {
                Ok(Some(lines)) => self.current = lines?.into_iter(),
                Ok(None) => return Ok(None),
                Err(_) => {
                    return Err(AuthError::DeadlineExceeded(format!(
                        "no message for {} s: the import stopped there; send the rest \
                         again (lines already imported are skipped)",
                        self.idle.as_secs()
                    )));
                }
            }
        }
    }
}

fn too_long() -> String {
    format!("longer than {MAX_LINE_BYTES} bytes")
}

/// The next line of `input` (`None` at the end), or why it is refused: a line
/// longer than [`MAX_LINE_BYTES`] is consumed without being kept.
async fn read_line<R: AsyncBufRead + Unpin>(input: &mut R) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long_seen = false;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            if line.is_empty() && !too_long_seen {
                return Ok(None);
            }
            break;
        }
        let (take, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if line.len() + take <= MAX_LINE_BYTES {
            line.extend_from_slice(&chunk[..take]);
        } else {
            too_long_seen = true;
        }
        input.consume(take + usize::from(end));
        if end {
            break;
        }
    }
    Ok(Some(if too_long_seen {
        Err(too_long())
    } else {
        String::from_utf8(line).map_err(|_| "not UTF-8".to_owned())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_gone_quiet_ends_the_import() {
        let first = futures::stream::iter(vec![Ok(vec!["a".to_owned()])]);
        let quiet = first.chain(futures::stream::pending());
        let mut lines = Messages::with_idle(Box::pin(quiet), Duration::from_millis(50));
        assert_eq!(lines.next_line().await.unwrap(), Some(Ok("a".to_owned())));
        let gone = lines.next_line().await;
        assert!(
            matches!(&gone, Err(AuthError::DeadlineExceeded(m)) if m.contains("no message for")),
            "{gone:?}"
        );
    }

    #[tokio::test]
    async fn messages_give_their_lines_in_order_and_bound_each() {
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        let messages = futures::stream::iter(vec![
            Ok(vec!["a".to_owned(), long]),
            Ok(vec![]),
            Ok(vec!["b".to_owned()]),
            Err(AuthError::Unavailable("gone".into())),
        ]);
        let mut lines = Messages::new(messages);
        assert_eq!(lines.next_line().await.ok(), Some(Some(Ok("a".into()))));
        assert_eq!(lines.next_line().await.ok(), Some(Some(Err(too_long()))));
        assert_eq!(lines.next_line().await.ok(), Some(Some(Ok("b".into()))));
        assert!(lines.next_line().await.is_err());
    }

    #[tokio::test]
    async fn a_file_line_past_the_bound_is_skipped_not_kept() {
        let text = format!("a\n{}\nb", "x".repeat(MAX_LINE_BYTES + 1));
        let mut input = text.as_bytes();
        assert_eq!(input.next_line().await.ok(), Some(Some(Ok("a".into()))));
        assert_eq!(input.next_line().await.ok(), Some(Some(Err(too_long()))));
        assert_eq!(input.next_line().await.ok(), Some(Some(Ok("b".into()))));
        assert_eq!(input.next_line().await.ok(), Some(None));
    }
}
