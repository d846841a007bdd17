//! `WatchRuleSets`: the door's notice stream ([`crate::app::notices`]) as protobuf messages.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::Status;

use super::{convert, pb};
use crate::app::notices::{NoticeEvent, NoticeStatus, RuleSetNotice};

/// The response stream of `WatchRuleSets`.
pub type NoticeStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchRuleSetsResponse, Status>> + Send>>;

/// One notice as a message.
pub fn notice(n: &RuleSetNotice) -> pb::RuleSetNotice {
    pb::RuleSetNotice {
        status: match n.status {
            NoticeStatus::Serving => pb::rule_set_notice::Status::Serving,
            NoticeStatus::Unavailable => pb::rule_set_notice::Status::Unavailable,
        } as i32,
        ruleset: n.ruleset.as_ref().map(convert::ruleset),
        refused: n.refused.as_ref().map(|r| pb::RefusedRuleSet {
            id: r.id.clone(),
            version: r.version.clone(),
            detail: r.detail.clone(),
        }),
        revision: n.revision.clone(),
    }
}

fn update(event: NoticeEvent) -> Result<pb::WatchRuleSetsResponse, Status> {
    use pb::watch_rule_sets_response::Update;
    Ok(pb::WatchRuleSetsResponse {
        update: Some(match event {
            NoticeEvent::Notice(n) => Update::Notice(notice(&n.notice)),
            NoticeEvent::Heartbeat(n) => Update::Heartbeat(notice(&n.notice)),
        }),
    })
}

/// The door's stream, rendered. The door's stream ends only on server shutdown, which ends this
/// one with `UNAVAILABLE` (`SHUTTING_DOWN`): a booking system's watch loop reconnects.
pub fn stream(events: crate::app::notices::NoticeStream) -> NoticeStream {
    let shutting_down = futures::stream::once(async {
        Err(super::status::status(crate::app::AppError::ShuttingDown))
    });
    Box::pin(events.map(update).chain(shutting_down))
}
