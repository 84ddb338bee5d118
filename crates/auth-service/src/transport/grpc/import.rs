//! ImportIdentities' request stream as the import's source of lines: each
//! message checked at the edge (how many lines it carries), and what tonic
//! refuses while decoding one (too large, not protobuf) told to the caller as
//! their mistake, with the message's number, instead of as a server fault.

use crate::domain::FieldViolation;
use crate::error::AuthError;
use crate::import::{MAX_LINES_PER_MESSAGE, Messages};
use futures::{Stream, StreamExt};
use identity_proto::auth::v1 as pb;
use platform::grpc::MAX_MESSAGE_BYTES;
use tonic::{Code, Status};

/// What a refused stream should do next: the batches committed before the
/// bad message stay, and sending them again skips them.
const AGAIN: &str = "The import stopped there; send the corrected lines again from the \
                     start: lines already imported are skipped";

/// The lines of a request stream, one message at a time.
pub(super) fn lines(
    stream: impl Stream<Item = Result<pb::ImportIdentitiesRequest, Status>> + Send + Unpin,
) -> Messages<impl Stream<Item = Result<Vec<String>, AuthError>> + Send + Unpin> {
    let numbered = stream.enumerate().map(|(i, message)| {
        let number = i + 1;
        let lines = message.map_err(|status| refused(&status, number))?.lines;
        if lines.len() > MAX_LINES_PER_MESSAGE {
            return Err(FieldViolation::new(
                "lines",
                format!(
                    "message {number} carries {} lines; send at most {MAX_LINES_PER_MESSAGE} per \
                     message. {AGAIN}",
                    lines.len()
                ),
            )
            .into());
        }
        Ok(lines)
    });
    Messages::new(numbered)
}

/// Why message `number` could not be read.
fn refused(status: &Status, number: usize) -> AuthError {
    let violation = |what: String| FieldViolation::new("lines", what).into();
    match status.code() {
        // Over the decoding limit, compressed or not.
        Code::OutOfRange | Code::ResourceExhausted => violation(format!(
            "message {number} is over the limit of {MAX_MESSAGE_BYTES} bytes a message: send \
             fewer lines per message (a line must fit in one). {AGAIN}"
        )),
        // A body that is not an ImportIdentitiesRequest (e.g. a line not UTF-8).
        Code::Internal => violation(format!(
            "message {number} is not an ImportIdentitiesRequest ({}); every line must be \
             UTF-8. {AGAIN}",
            status.message()
        )),
        // The connection broke: nobody is left to hear, but the run stops
        // with what it committed.
        _ => AuthError::Unavailable(format!(
            "the request stream broke at message {number}: {}",
            status.message()
        )),
    }
}
