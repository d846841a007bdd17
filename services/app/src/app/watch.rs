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

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::watch_budget::WatchPermit;
use super::{App, AppError};
use crate::auth::Caller;

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
    /// The generation this stream last woke for.
    seen: u64,
    shutdown: watch::Receiver<bool>,
    /// Fires at the next heartbeat deadline. Sending a message only records when
    /// (`last_sent`): re-arming a timer for each of 10,000 streams on every activation cost more
    /// than the message itself, so the deadline moves only when it fires early.
    heartbeat: Pin<Box<Sleep>>,
    every: Duration,
    last_sent: Instant,
    /// This stream's place in the per-key and total budgets (and the open-stream metric),
    /// released when the stream is dropped.
    _permit: WatchPermit,
}

impl Subscription {
    /// Waits for the next reason to act.
    pub async fn wake(&mut self) -> Wake {
        loop {
            if *self.shutdown.borrow() {
                return Wake::End;
            }
            tokio::select! {
                _ = self.shutdown.changed() => return Wake::End,
                changed = self.generation.changed() => {
                    if changed.is_err() {
                        return Wake::End;
                    }
                    self.seen = *self.generation.borrow_and_update();
                    return Wake::Changed;
                }
                () = self.heartbeat.as_mut() => {
                    let due = self.last_sent + self.every;
                    if due > Instant::now() {
                        // Something was sent since the timer was armed: a heartbeat is due a
                        // full interval after it.
                        self.heartbeat.as_mut().reset(due);
                        continue;
                    }
                    self.sent();
                    self.heartbeat.as_mut().reset(self.last_sent + self.every);
                    return Wake::Heartbeat;
                }
            }
        }
    }

    /// Something was sent: the next heartbeat is a full interval away.
    pub fn sent(&mut self) {
        self.last_sent = Instant::now();
    }

    /// The rule-set generation this stream last woke for (or subscribed at).
    pub fn generation(&self) -> u64 {
        self.seen
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
        let seen = *generation.borrow_and_update();
        let permit = state.watch_limits.acquire(caller.key_id.as_deref())?;
        let every = self.ctx.heartbeat.max(Duration::from_millis(10));
        let now = Instant::now();
        Ok(Subscription {
            generation,
            seen,
            shutdown: self.ctx.shutdown.clone(),
            heartbeat: Box::pin(tokio::time::sleep_until(now + every)),
            every,
            last_sent: now,
            _permit: permit,
        })
    }
}

/// What streams send, computed once per rule-set generation and key (a clinic; a clinic and a
/// request) and shared by every stream with that key: 10,000 streams woken by one activation
/// make a handful of answers instead of one each. A stream reads the catalog served *after* it
/// woke for a generation (the catalog is swapped before the generation is bumped), so a value
/// filed under a generation is never older than it; a stream behind the board (it woke for a
/// generation already replaced) makes its own.
#[derive(Debug)]
pub struct Board<V> {
    current: Mutex<Filed<V>>,
}

#[derive(Debug)]
struct Filed<V> {
    generation: u64,
    by_key: HashMap<String, Arc<V>>,
}

impl<V> Default for Board<V> {
    fn default() -> Self {
        Self {
            current: Mutex::new(Filed {
                generation: 0,
                by_key: HashMap::new(),
            }),
        }
    }
}

impl<V> Board<V> {
    /// The value of `key` at `generation`, made by `make` unless another stream made it already
    /// (`make`'s errors are not shared: each stream meets its own).
    pub fn get<E>(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        {
            let mut board = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if generation > board.generation {
                board.generation = generation;
                board.by_key.clear();
            }
            if generation == board.generation
                && let Some(v) = board.by_key.get(key)
            {
                return Ok(v.clone());
            }
        }
        // Made outside the lock: other keys are not held up by this one.
        let made = Arc::new(make()?);
        let mut board = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if generation == board.generation {
            return Ok(board.by_key.entry(key.to_owned()).or_insert(made).clone());
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: u32) -> Result<u32, ()> {
        Ok(v)
    }

    #[test]
    fn a_board_shares_one_value_per_key_and_generation_and_never_files_an_older_one() {
        let board = Board::<u32>::default();
        let a = board.get(1, "aurora", || ok(10)).expect("made");
        let again = board.get(1, "aurora", || ok(11)).expect("shared");
        assert!(Arc::ptr_eq(&a, &again), "the same generation and key share");
        assert_eq!(*board.get(1, "borealis", || ok(20)).expect("made"), 20);
        // A new generation replaces every value.
        assert_eq!(*board.get(2, "aurora", || ok(12)).expect("made"), 12);
        // A stream still at generation 1 makes its own, and does not file it.
        assert_eq!(*board.get(1, "aurora", || ok(13)).expect("own"), 13);
        assert_eq!(*board.get(2, "aurora", || ok(14)).expect("shared"), 12);
        // Errors are each stream's own.
        assert!(board.get(2, "x", || Err::<u32, _>("bad")).is_err());
        assert_eq!(*board.get(2, "x", || ok(1)).expect("made"), 1);
    }
}
