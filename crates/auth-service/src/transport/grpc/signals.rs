//! SubscribeSecurityEvents: the feed's deliveries as protobuf messages.

use crate::context::Context;
use crate::signals::stream::Delivery;
use crate::signals::{SignalSubject, Subscription};
use futures::Stream;
use futures::StreamExt;
use identity_proto::auth::v1 as pb;
use platform::grpc::timestamp;
use platform::ids::SubjectId;
use std::pin::Pin;
use std::sync::Arc;
use tonic::Status;

/// The stream SubscribeSecurityEvents answers with.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<pb::SubscribeSecurityEventsResponse, Status>> + Send>>;

/// Serves `subscription` as protobuf messages.
pub fn stream(ctx: Arc<Context>, subscription: Subscription) -> EventStream {
    let deliveries = crate::signals::stream::serve(ctx, subscription);
    Box::pin(deliveries.map(|d| d.map(message).map_err(Status::from)))
}

fn message(delivery: Delivery) -> pb::SubscribeSecurityEventsResponse {
    match delivery {
        Delivery::Heartbeat { cursor, at } => pb::SubscribeSecurityEventsResponse {
            cursor,
            heartbeat: true,
            event_time: Some(timestamp(at)),
            ..Default::default()
        },
        Delivery::Event {
            cursor,
            logged,
            set,
        } => {
            let s = logged.signal;
            let (subject_id, _) = s.subject.stored();
            let subject_kind = match s.subject {
                SignalSubject::Subject(SubjectId::User(_)) => pb::SubjectKind::User,
                SignalSubject::Subject(SubjectId::Service(_)) => pb::SubjectKind::ServiceAccount,
                SignalSubject::Role(_) => pb::SubjectKind::Role,
            };
            pb::SubscribeSecurityEventsResponse {
                cursor,
                heartbeat: false,
                event_type: s.kind.uri(),
                subject_id,
                subject_kind: subject_kind as i32,
                session_id: s.session.map(|id| id.to_string()).unwrap_or_default(),
                event_time: Some(timestamp(s.at)),
                set,
                roles: s.detail.roles.unwrap_or_default(),
                permissions: s.detail.permissions.unwrap_or_default(),
            }
        }
    }
}
