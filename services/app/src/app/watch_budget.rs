//! Budgets for watch streams (gRPC `WatchDepthLimits` and `WatchRuleSets`, REST
//! `GET /v1/rulesets:watch`, one budget for all of them) per API key and in total. Each open
//! stream holds an RAII permit that is released when the stream ends, however it ends (finished,
//! cancelled, connection lost); a permit also counts the stream in the `protocol.watch.streams`
//! metric, so every kind of watch is counted in the one place every kind of watch goes through.
//! The door's: a watch is opened through it ([`super::watch`]), whatever the protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Past a watch-stream budget: which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchExhausted {
    /// This key holds `limit` streams already.
    PerKey { limit: usize },
    /// The server holds `limit` streams already.
    Total { limit: usize },
}

impl std::fmt::Display for WatchExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerKey { limit } => write!(
                f,
                "this API key has {limit} watch streams open (WatchDepthLimits, WatchRuleSets \
                 and rule-set events together), the most allowed per key: close one before \
                 opening another"
            ),
            Self::Total { limit } => write!(
                f,
                "the server has {limit} watch streams open, the most it allows: retry later or \
                 on another replica"
            ),
        }
    }
}

impl std::error::Error for WatchExhausted {}

/// Seconds a client refused a watch stream is asked to wait (`Retry-After`, `RetryInfo`).
pub const WATCH_RETRY_AFTER_SECS: u64 = 10;

/// The watch-stream budgets (`PROTOCOL_MAX_WATCH_STREAMS`, `..._PER_KEY`).
#[derive(Debug)]
pub struct WatchLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    per_key: usize,
    by_key: Mutex<HashMap<String, usize>>,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self::new(10_000, 1_000)
    }
}

impl WatchLimits {
    pub fn new(max_total: usize, per_key: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            per_key,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one more stream of `key` (`None`: open mode, counted in the total only).
    pub fn acquire(self: &Arc<Self>, key: Option<&str>) -> Result<WatchPermit, WatchExhausted> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| WatchExhausted::Total {
                limit: self.max_total,
            })?;
        if let Some(key) = key {
            let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            let n = by_key.entry(key.to_owned()).or_insert(0);
            if *n >= self.per_key {
                return Err(WatchExhausted::PerKey {
                    limit: self.per_key,
                });
            }
            *n += 1;
        }
        Ok(WatchPermit {
            limits: self.clone(),
            key: key.map(str::to_owned),
            _total: total,
            _counted: crate::metrics::WatchStreamGuard::new(),
        })
    }

    /// Streams open for `key` now.
    pub fn open_for(&self, key: &str) -> usize {
        let by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.get(key).copied().unwrap_or(0)
    }
}

/// One open watch stream; dropping it releases its place (and its count in the metric).
#[derive(Debug)]
pub struct WatchPermit {
    limits: Arc<WatchLimits>,
    key: Option<String>,
    _total: OwnedSemaphorePermit,
    _counted: crate::metrics::WatchStreamGuard,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            let mut by_key = self.limits.by_key.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = by_key.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    by_key.remove(key);
                }
            }
        }
    }
}
