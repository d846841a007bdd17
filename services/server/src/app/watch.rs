//! What every watch stream holds between polls, whatever it watches (depth limits, rule-set
//! notices) and whichever protocol carries it (gRPC, REST Server-Sent Events): the subscription
//! to rule-set changes, the heartbeat timer, the shutdown signal, and its place in the watch
//! budgets. One place, so every kind of watch is budgeted, counted and ended the same way.
//!
//! A latest-value design, with no task and no queue per stream: the stream waits on the
//! `generation` watch channel (bumped by every catalog swap) and computes what to send from the
//! catalog served *when it is polled*. A slow or stalled client holds at most one message, never
//! delays another stream, and on reading again gets the latest state rather than every
//! intermediate one. Dropping the stream (the client went away) frees everything.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{App, AppError};
use crate::auth::Caller;
use crate::edge::streams::WatchPermit;

/// Why a watch stream woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The served rule sets changed: recompute, send if what the client sees changed.
    Changed,
    /// Nothing was sent for a heartbeat interval: send a heartbeat.
    Heartbeat,
    /// The server is shutting down (or the rule sets will never change again): end cleanly.
    End,
}

/// One open watch: a few hundred bytes, whatever the client does.
pub struct Subscription {
    generation: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    ticker: Interval,
    /// This stream's place in the per-key and total budgets (and the open-stream metric),
    /// released when the stream is dropped.
    _permit: WatchPermit,
}

impl Subscription {
    /// Waits for the next reason to act.
    pub async fn wake(&mut self) -> Wake {
        if *self.shutdown.borrow() {
            return Wake::End;
        }
        tokio::select! {
            _ = self.shutdown.changed() => Wake::End,
            changed = self.generation.changed() => {
                if changed.is_err() { Wake::End } else { Wake::Changed }
            }
            _ = self.ticker.tick() => Wake::Heartbeat,
        }
    }

    /// Something was sent: the next heartbeat is a full interval away.
    pub fn sent(&mut self) {
        self.ticker.reset();
    }
}

impl App {
    /// Opens a watch for `caller`: subscribes to rule-set changes *before* the stream computes
    /// its first message (so a swap in between is seen as a change, never missed) and takes the
    /// stream's place in the watch budgets (`PROTOCOL_MAX_WATCH_STREAMS`, `..._PER_KEY`: one
    /// budget for every kind of watch).
    pub fn subscribe(&self, caller: &Caller) -> Result<Subscription, AppError> {
        let state = &self.ctx.state;
        let mut generation = state.generation.subscribe();
        generation.borrow_and_update();
        let permit = state.watch_limits.acquire(caller.key_id.as_deref())?;
        let every = self.ctx.heartbeat.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Subscription {
            generation,
            shutdown: self.ctx.shutdown.clone(),
            ticker,
            _permit: permit,
        })
    }
}
