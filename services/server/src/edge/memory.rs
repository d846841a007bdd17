//! The request-memory budget: what every request body may take in memory while it is read and
//! answered, held against one budget per server (`PROTOCOL_REQUEST_MEMORY_MB`), so that no mix of
//! requests takes a replica past its memory limit.
//!
//! A red team OOM-killed a replica at the shipped 256 MiB limit with one 4 MiB CDS Hooks call: a
//! JSON body becomes a tree of values many times its size before its types are read. The
//! strict JSON check (`protocol_engine::wire::check_json`) already caps a body's values; this
//! budget caps how many such bodies are in memory at once:
//!
//! - a body's cost is what it may take at worst, from the bytes read so far ([`Cost`]): JSON, the
//!   bytes three times (the body, and the strings copied out of it twice) plus its tree of
//!   values at worst, capped by the check's value budget; protobuf, a fixed multiple of the bytes (a repeated
//!   message costs its struct for two bytes on the wire);
//! - a REST request that says its `Content-Length` reserves the whole cost before any byte is read
//!   (refused at once with `MEMORY_BUSY` when the budget cannot hold it); every body is also
//!   metered as it arrives ([`Metered`]), so a chunked body or a gRPC message takes its share
//!   frame by frame and fails the read, with the same refusal, when the budget runs out;
//! - what is reserved is held until the answer's head is ready ([`Held`], kept by the admission
//!   layer's future), since the parsed request lives that long.
//!
//! A refusal never queues: the client is told to retry after a second, as with load shedding.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a body of `len` bytes read so far may take in memory at worst, in bytes.
pub type Cost = fn(u64) -> u64;

/// Bytes of one JSON object in a tree at worst: a `serde_json` map node (a `BTreeMap` leaf of
/// eleven keys and values) for an object of one key (measured in docs/performance.md, "Memory
/// per request").
pub const JSON_OBJECT_BYTES: u64 = 650;

/// Bytes of one other JSON value in a tree at worst: a `serde_json::Value` in a vector grown by
/// doubling.
pub const JSON_VALUE_BYTES: u64 = 64;

/// Bytes in memory per protobuf byte at worst (a repeated message of two bytes on the wire
/// decoded into its struct; measured in docs/performance.md, "Memory per request").
pub const PROTOBUF_AMPLIFICATION: u64 = 48;

/// A JSON body's worst case: the body, the strings copied out of it into the tree and again
/// into the typed request, and the tree itself: all objects of one key (`{"":0},`, seven bytes
/// each) or all scalars (`0,`, two bytes), whichever is larger, each as many as the strict
/// check lets through (`protocol_engine::wire::check_json`: an object counts eight values).
pub fn json_cost(len: u64) -> u64 {
    use protocol_engine::wire::{MAX_JSON_VALUES, OBJECT_WEIGHT};
    let objects = (len / 7).min((MAX_JSON_VALUES / OBJECT_WEIGHT) as u64);
    let values = (len / 2).min(MAX_JSON_VALUES as u64);
    let tree = (objects * JSON_OBJECT_BYTES).max(values * JSON_VALUE_BYTES);
    len.saturating_mul(3).saturating_add(tree)
}

/// A protobuf message's worst case.
pub fn protobuf_cost(len: u64) -> u64 {
    len.saturating_mul(PROTOBUF_AMPLIFICATION)
}

fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// The budget of one server (both listeners share it: the memory is one).
#[derive(Debug)]
pub struct RequestMemory {
    permits: Arc<Semaphore>,
    budget_kib: u64,
}

/// Permits taken for one request, released together when its answer's head is ready.
pub type Held = Arc<Mutex<Vec<OwnedSemaphorePermit>>>;

/// A reservation the budget could not hold: what was needed and the whole budget, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "reading this body takes up to {needed_kib} KiB and the request-memory budget \
     ({budget_kib} KiB) is in use"
)]
pub struct MemoryBusy {
    pub needed_kib: u64,
    pub budget_kib: u64,
}

impl RequestMemory {
    /// A budget of `mib` MiB (at least 1).
    pub fn new(mib: u64) -> Arc<Self> {
        let budget_kib = mib.max(1).saturating_mul(1024);
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(
                usize::try_from(budget_kib).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            budget_kib,
        })
    }

    /// The whole budget, KiB.
    pub fn budget_kib(&self) -> u64 {
        self.budget_kib
    }

    /// Takes `kib` KiB into `held`, or says it cannot (never waits).
    pub fn reserve(&self, kib: u64, held: &Held) -> Result<(), MemoryBusy> {
        if kib == 0 {
            return Ok(());
        }
        let busy = MemoryBusy {
            needed_kib: kib,
            budget_kib: self.budget_kib,
        };
        let n = u32::try_from(kib).map_err(|_| busy)?;
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| busy)?;
        if let Ok(mut held) = held.lock() {
            held.push(permit);
        }
        Ok(())
    }

    /// KiB free now (for `/readyz` and tests).
    pub fn available_kib(&self) -> u64 {
        self.permits.available_permits() as u64
    }
}

/// A body that did not arrive within the body-read timeout (`PROTOCOL_BODY_READ_TIMEOUT_SECS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body did not arrive within {secs} s")]
pub struct BodyTooSlow {
    pub secs: u64,
}

/// How a protocol's stack is told that a body's read failed.
#[derive(Clone, Copy)]
pub struct ReadErrors {
    pub busy: fn(MemoryBusy) -> axum::BoxError,
    pub slow: fn(BodyTooSlow) -> axum::BoxError,
}

pin_project_lite::pin_project! {
    /// A request body that takes its cost from the budget as its bytes arrive, beyond what was
    /// reserved before it ([`RequestMemory::reserve`] from a `Content-Length`), and fails the
    /// read with [`MemoryBusy`] when the budget cannot hold the rest, or with [`BodyTooSlow`]
    /// when the whole body has not arrived by its deadline (a slow client gives its place back
    /// rather than holding it to the request timeout).
    pub struct Metered<B> {
        #[pin]
        inner: B,
        memory: Arc<RequestMemory>,
        held: Held,
        cost: Cost,
        read: u64,
        reserved_kib: u64,
        #[pin]
        deadline: tokio::time::Sleep,
        timeout: std::time::Duration,
        errors: ReadErrors,
    }
}

impl<B> Metered<B> {
    #[allow(
        clippy::too_many_arguments,
        reason = "one constructor called in one place, the admission layer"
    )]
    pub fn new(
        inner: B,
        memory: Arc<RequestMemory>,
        held: Held,
        cost: Cost,
        reserved_kib: u64,
        timeout: std::time::Duration,
        errors: ReadErrors,
    ) -> Self {
        Self {
            inner,
            memory,
            held,
            cost,
            read: 0,
            reserved_kib,
            deadline: tokio::time::sleep(timeout),
            timeout,
            errors,
        }
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        if this.deadline.poll(cx).is_ready() {
            let slow = BodyTooSlow {
                secs: this.timeout.as_secs(),
            };
            return Poll::Ready(Some(Err((this.errors.slow)(slow))));
        }
        let frame = match std::task::ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            *this.read = this.read.saturating_add(data.len() as u64);
            let needed = kib((this.cost)(*this.read));
            if needed > *this.reserved_kib {
                let more = needed - *this.reserved_kib;
                if let Err(busy) = this.memory.reserve(more, this.held) {
                    return Poll::Ready(Some(Err((this.errors.busy)(busy))));
                }
                *this.reserved_kib = needed;
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The KiB a REST body announced by `content_length` reserves before it is read.
pub fn announced_kib(content_length: Option<u64>, cost: Cost) -> u64 {
    content_length.map_or(0, |len| kib(cost(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn json_cost_is_capped_by_the_value_budget() {
        assert_eq!(json_cost(0), 0);
        // 3 KB: the body three times and 428 objects of one key.
        assert_eq!(json_cost(3_000), 9_000 + 428 * JSON_OBJECT_BYTES);
        // 4 MiB: the value budget caps the tree at 25,000 objects.
        let four = 4 * 1024 * 1024;
        assert_eq!(json_cost(four), 3 * four + 25_000 * JSON_OBJECT_BYTES);
    }

    const ERRORS: ReadErrors = ReadErrors {
        busy: |busy| Box::new(busy),
        slow: |slow| Box::new(slow),
    };

    #[tokio::test]
    async fn a_metered_body_takes_its_cost_and_fails_past_the_budget() {
        let memory = RequestMemory::new(1);
        let held: Held = Arc::default();
        // 8 KiB of JSON costs 24 KiB + 1,170 objects × 650 B = 767 KiB: inside 1 MiB.
        let body = Metered::new(
            http_body_util::Full::new(Bytes::from(vec![b' '; 8 * 1024])),
            memory.clone(),
            held.clone(),
            json_cost,
            0,
            std::time::Duration::from_secs(10),
            ERRORS,
        );
        let bytes = body.collect().await.expect("inside the budget").to_bytes();
        assert_eq!(bytes.len(), 8 * 1024);
        assert_eq!(memory.available_kib(), 1024 - 767);

        // A second body of 8 KiB needs as much again: more than is left.
        let held_two: Held = Arc::default();
        let body = Metered::new(
            http_body_util::Full::new(Bytes::from(vec![b' '; 8 * 1024])),
            memory.clone(),
            held_two.clone(),
            json_cost,
            0,
            std::time::Duration::from_secs(10),
            ERRORS,
        );
        let err = body.collect().await.expect_err("past the budget");
        let busy = err.downcast_ref::<MemoryBusy>().expect("MemoryBusy");
        assert_eq!(busy.budget_kib, 1024);
        drop(held_two);
        // Releasing the first request's permits gives its memory back.
        held.lock().expect("lock").clear();
        assert_eq!(memory.available_kib(), 1024);
    }
}
