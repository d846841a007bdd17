//! The master that Redis Sentinel names, followed across failovers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Client, RedisResult};

use super::timed_out;
use crate::store::types::StoreOptions;

/// The master that the sentinels name, and one multiplexed connection to it, replaced when lost.
pub(super) struct SentinelLink {
    /// Held while asking the sentinels and connecting: one resolution at a time.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    next_id: AtomicU64,
    /// The master last connected to, to log a change once.
    master: Mutex<String>,
    connection: AsyncConnectionConfig,
    /// Asking the sentinels, connecting and checking the master's role, together.
    resolve_timeout: Duration,
}

impl SentinelLink {
    pub(super) fn new(
        sentinel: SentinelClient,
        options: &StoreOptions,
        response_timeout: Duration,
    ) -> Self {
        Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            current: Mutex::new(None),
            next_id: AtomicU64::new(0),
            master: Mutex::new(String::new()),
            connection: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(response_timeout)),
            resolve_timeout: options.connect_timeout * 2 + options.response_timeout,
        }
    }

    /// A client for the master the sentinels name now (its role checked).
    pub(super) async fn master(&self) -> RedisResult<Client> {
        let mut sentinel = self.sentinel.lock().await;
        let client = tokio::time::timeout(self.resolve_timeout, sentinel.async_get_client())
            .await
            .map_err(|_| timed_out("asking the sentinels for the master"))??;
        let addr = client.get_connection_info().addr().to_string();
        let mut last = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != addr {
            tracing::info!(master = %addr, "following the redis master named by the sentinels");
            *last = addr;
        }
        Ok(client)
    }

    pub(super) fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let client = self.master().await?;
        // Someone else may have connected while this task waited for the sentinels.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let conn = tokio::time::timeout(
            self.resolve_timeout,
            client.get_multiplexed_async_connection_with_config(&self.connection),
        )
        .await
        .map_err(|_| timed_out("connecting to the master"))??;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some((id, conn.clone()));
        Ok((id, conn))
    }

    /// Drops connection `id` (not a newer one): the next command asks the sentinels again.
    pub(super) fn forget(&self, id: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(c, _)| *c == id) {
            *current = None;
        }
    }
}
