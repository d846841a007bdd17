//! `WatchDepthLimits`: the current limits on subscribe, then new limits whenever the served rule
//! set changes (the `generation` counter that every catalog swap bumps) and the limits for this
//! request differ; a heartbeat on idle streams; a clean end (OK) on server shutdown.
//!
//! One small task per stream feeds a bounded channel; it stops as soon as the client goes away.

use std::sync::Arc;

use protocol_engine::DepthLimitsRequest;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{convert, pb, status};
use crate::auth::Caller;
use crate::context::Context;

type Item = Result<pb::DepthLimitsUpdate, Status>;

/// The limits for a caller now, from the catalog served now.
fn current(
    ctx: &Context,
    caller: &Caller,
    req: &DepthLimitsRequest,
) -> Result<pb::DepthLimits, Status> {
    let catalog = ctx.catalog();
    let rs = Context::ruleset(&catalog, caller).map_err(status::no_ruleset)?;
    rs.depth_limits(req)
        .map(|d| convert::depth_limits(&d))
        .map_err(status::invalid)
}

fn limits(l: pb::DepthLimits) -> Item {
    Ok(pb::DepthLimitsUpdate {
        update: Some(pb::depth_limits_update::Update::Limits(l)),
    })
}

/// Starts a stream. An invalid request fails the call itself (INVALID_ARGUMENT), not the stream.
pub fn depth_limits(
    ctx: Context,
    caller: Arc<Caller>,
    req: DepthLimitsRequest,
) -> Result<ReceiverStream<Item>, Status> {
    let first = current(&ctx, &caller, &req)?;
    let (tx, rx) = mpsc::channel::<Item>(4);
    let mut generation = ctx.state.generation.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    let heartbeat = ctx.heartbeat;
    tokio::spawn(async move {
        let mut last = first.clone();
        if tx.send(limits(first)).await.is_err() {
            return;
        }
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tx.closed() => break,
                changed = generation.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    match current(&ctx, &caller, &req) {
                        Ok(now) if now != last => {
                            last = now.clone();
                            if tx.send(limits(now)).await.is_err() {
                                break;
                            }
                            ticker.reset();
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            break;
                        }
                    }
                }
                _ = ticker.tick() => {
                    let beat = pb::DepthLimitsUpdate {
                        update: Some(pb::depth_limits_update::Update::Heartbeat(pb::Heartbeat {
                            ruleset: last.ruleset.clone(),
                        })),
                    };
                    if tx.send(Ok(beat)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
