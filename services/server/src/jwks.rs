//! The keys of trusted JWT issuers configured by URL (`jwt_issuers[].jwks_url` in the keys file):
//! fetched once before the server answers, then every [`REFRESH`], and at once (at most every
//! [`TICK`]) when a token names a key not loaded (a client that rotated its key). A fetch that
//! fails keeps the keys held and is logged; tokens signed with a key never loaded are refused
//! (`JWT_KEY_UNKNOWN`), never let through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol_app::auth::jwt::Issuers;

/// How often every issuer's keys are fetched again.
const REFRESH: Duration = Duration::from_secs(300);
/// How often a wanted fetch (an unknown `kid`) is looked at.
const TICK: Duration = Duration::from_secs(5);
/// One fetch's deadline.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches every issuer's keys once; `None` when no issuer has a URL.
pub async fn load(issuers: &Arc<Issuers>) -> anyhow::Result<Option<Fetcher>> {
    let urls = issuers.jwks_urls();
    if urls.is_empty() {
        return Ok(None);
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let fetcher = Fetcher {
        client,
        issuers: issuers.clone(),
        urls,
    };
    fetcher.fetch_all().await;
    Ok(Some(fetcher))
}

pub struct Fetcher {
    client: reqwest::Client,
    issuers: Arc<Issuers>,
    urls: Vec<(String, String)>,
}

impl Fetcher {
    /// Refreshes until aborted.
    pub async fn run(self) {
        let mut last = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            if self.issuers.take_wanted() || last.elapsed() >= REFRESH {
                self.fetch_all().await;
                last = Instant::now();
            }
        }
    }

    async fn fetch_all(&self) {
        for (iss, url) in &self.urls {
            match self.fetch(url).await {
                Ok(set) => {
                    tracing::info!(issuer = %iss, keys = set.keys.len(), "JWT issuer keys loaded");
                    self.issuers.set_keys(iss, set);
                }
                Err(e) => tracing::warn!(issuer = %iss, url = %url, error = %e,
                    "JWT issuer keys could not be fetched; the keys held are kept"),
            }
        }
    }

    async fn fetch(&self, url: &str) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
        let res = self.client.get(url).send().await?.error_for_status()?;
        let body = res.bytes().await?;
        Ok(serde_json::from_slice(&body)?)
    }
}
