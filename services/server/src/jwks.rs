//! The keys of trusted JWT issuers configured by URL (`jwt_issuers[].jwks_url` in the keys file):
//! fetched once before the server answers (every issuer at once, each within [`TIMEOUT`]), then
//! every [`REFRESH`], and sooner when a token names a key not held (a client that rotated its
//! key), but for one issuer no more often than every [`MIN_INTERVAL`]: a caller cannot make the
//! server fetch at will. A fetch that fails keeps the keys held and is logged; a key the server
//! cannot use is skipped (and logged), not the whole set; tokens signed with a key never loaded
//! are refused (`JWT_KEY_UNKNOWN`), never let through.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use protocol_app::auth::jwt::Issuers;
use serde_json::Value;

/// How often every issuer's keys are fetched again.
const REFRESH: Duration = Duration::from_secs(300);
/// The least time between two fetches of one issuer's keys.
const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// How often a wanted fetch (an unknown `kid`) is looked at.
const TICK: Duration = Duration::from_secs(5);
/// One fetch's deadline.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read.
const MAX_BYTES: usize = 1024 * 1024;

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
    let mut fetcher = Fetcher {
        client,
        issuers: issuers.clone(),
        urls,
        last: HashMap::new(),
    };
    let all: Vec<String> = fetcher.urls.iter().map(|(iss, _)| iss.clone()).collect();
    fetcher.fetch(&all).await;
    Ok(Some(fetcher))
}

pub struct Fetcher {
    client: reqwest::Client,
    issuers: Arc<Issuers>,
    urls: Vec<(String, String)>,
    /// When each issuer's keys were last fetched.
    last: HashMap<String, Instant>,
}

impl Fetcher {
    /// Refreshes until aborted.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            let due: Vec<String> = self
                .urls
                .iter()
                .map(|(iss, _)| iss)
                .filter(|iss| {
                    let since = self.last.get(*iss).map_or(REFRESH, Instant::elapsed);
                    since >= REFRESH || (since >= MIN_INTERVAL && self.issuers.take_wanted(iss))
                })
                .cloned()
                .collect();
            if !due.is_empty() {
                self.fetch(&due).await;
            }
        }
    }

    /// Fetches the keys of `due`, all at once.
    async fn fetch(&mut self, due: &[String]) {
        let this = &*self;
        let jobs = this
            .urls
            .iter()
            .filter(|(iss, _)| due.contains(iss))
            .map(|(iss, url)| async move { (iss.clone(), url.clone(), this.get(url).await) });
        let results = futures::future::join_all(jobs).await;
        for (iss, url, got) in results {
            self.last.insert(iss.clone(), Instant::now());
            match got {
                Ok(set) => {
                    tracing::info!(issuer = %iss, keys = set.keys.len(), "JWT issuer keys loaded");
                    self.issuers.set_keys(&iss, set);
                }
                Err(e) => tracing::warn!(issuer = %iss, url = %url, error = %e,
                    "JWT issuer keys could not be fetched; the keys held are kept"),
            }
        }
    }

    async fn get(&self, url: &str) -> anyhow::Result<JwkSet> {
        let mut res = self.client.get(url).send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                anyhow::bail!("the key set is larger than {MAX_BYTES} bytes");
            }
        }
        Ok(keys_of(&body)?)
    }
}

/// The keys of a JWK set document, each read on its own: one the server cannot use (another
/// curve, an encryption key type) is skipped and logged, not the whole set.
fn keys_of(body: &[u8]) -> Result<JwkSet, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<Value>,
    }
    let doc: Doc = serde_json::from_slice(body)?;
    let keys = doc
        .keys
        .into_iter()
        .filter_map(|k| match serde_json::from_value::<Jwk>(k) {
            Ok(jwk) => Some(jwk),
            Err(e) => {
                tracing::warn!(error = %e, "a key of a JWT issuer's set is skipped");
                None
            }
        })
        .collect();
    Ok(JwkSet { keys })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_the_server_cannot_read_is_skipped_not_the_set() {
        let set = super::keys_of(
            br#"{"keys": [
                {"kty": "EC", "crv": "P-256", "kid": "a", "x": "30nQ7E6O8CqsgTthLaEFVrVD7upht45iB4J9GgK3ld8", "y": "h1RGCdvsaG0uH96t9IjRTBmpJMXnVLRFS1pwUfXOtiQ"},
                {"kty": "XYZ", "kid": "b"}
            ]}"#,
        )
        .expect("reads");
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].common.key_id.as_deref(), Some("a"));
    }
}
