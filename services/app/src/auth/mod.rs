//! API keys: who is calling, for which clinic, allowed to do what.
//!
//! Keys are never stored in plain text: the keys file (or `PROTOCOL_API_KEYS`) holds the hex
//! SHA-256 of each key, and a presented bearer token is hashed and looked up. A key belongs to one
//! clinic (tenant), whose overlay rule set it sees (the base when the clinic has none), and carries
//! scopes. The same check serves REST (`Authorization: Bearer`) and gRPC (`authorization`
//! metadata), so 401/UNAUTHENTICATED and 403/PERMISSION_DENIED mean the same on both.
//!
//! A bearer token may also be a JWT signed by a trusted issuer ([`jwt`]: CDS Hooks clients, OAuth2
//! client-credentials tokens), configured in the same file; its caller is a [`Caller`] like a key's.
//!
//! With no keys (and no JWT issuers) configured the server is open (every scope, the base rule set) — allowed only on
//! loopback addresses, which [`check_exposure`] enforces at start.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub mod jwt;

pub use jwt::JwtCheck;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Eligibility, batch eligibility, contraindications, treatments and facts.
    Eligibility,
    /// Depth limits (treatment devices).
    Devices,
    /// Treatment plans.
    Plans,
    /// Rule-set administration of the key's own clinic: its overlay, whose id is the tenant.
    Admin,
    /// Rule-set administration for the whole platform: the base, other clinics' overlays, new
    /// ids. Granted to no clinic key by default; an operator's key holds it.
    Platform,
    /// Reading the decision log of the key's own clinic (`GET /v1/decisions/{decision_id}`,
    /// gRPC `GetDecision`): a clinic's auditor.
    Audit,
    /// Reading what the caller's rule set declares (the catalogue, treatments, facts): never
    /// granted by name (a keys file that lists it is refused), held by every key with
    /// `eligibility`, `devices` or `plans` — a device needs the device list as much as a booking
    /// system needs the treatments.
    #[serde(skip)]
    Catalogue,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Eligibility => "eligibility",
            Scope::Devices => "devices",
            Scope::Plans => "plans",
            Scope::Admin => "admin",
            Scope::Platform => "platform",
            Scope::Audit => "audit",
            Scope::Catalogue => "catalogue",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name from the keys file (for logs); `None` in open mode.
    pub key_id: Option<String>,
    /// The clinic; `None` (the base rule set) in open mode.
    pub tenant: Option<String>,
    scopes: Vec<Scope>,
}

impl Caller {
    /// The caller of an open server: the base rule set, every scope.
    pub fn open() -> Self {
        Self {
            key_id: None,
            tenant: None,
            scopes: vec![
                Scope::Eligibility,
                Scope::Devices,
                Scope::Plans,
                Scope::Admin,
                Scope::Platform,
                Scope::Audit,
            ],
        }
    }

    /// Whether this caller holds `scope` ([`Scope::Catalogue`]: any reading scope).
    pub fn has(&self, scope: Scope) -> bool {
        match scope {
            Scope::Catalogue => [Scope::Eligibility, Scope::Devices, Scope::Plans]
                .iter()
                .any(|s| self.scopes.contains(s)),
            _ => self.scopes.contains(&scope),
        }
    }

    /// Whether this caller may read and change rule set `id`: its own clinic's overlay with
    /// `admin`, anything with `platform`. The one place the tenant rule of administration lives.
    pub fn may_manage(&self, id: &str) -> bool {
        self.has(Scope::Platform)
            || (self.has(Scope::Admin) && self.tenant.as_deref().is_some_and(|t| t == id))
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No credentials, or not a bearer token (401 / UNAUTHENTICATED).
    Missing,
    /// A bearer token that matches no key (401 / UNAUTHENTICATED).
    Unknown,
    /// A valid key without the scope the operation needs (403 / PERMISSION_DENIED).
    Forbidden(Scope),
    /// More than one `Authorization` header (or `authorization` metadata value): refused rather
    /// than picking one (401 / UNAUTHENTICATED).
    Duplicate,
    /// A JWT that failed a check, named (401 / UNAUTHENTICATED).
    Jwt(JwtCheck),
}

impl std::error::Error for AuthError {}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing => {
                f.write_str("an API key is required: send `Authorization: Bearer <key>`")
            }
            AuthError::Unknown => f.write_str("the API key is not valid"),
            AuthError::Duplicate => f.write_str(
                "the request carries more than one `Authorization` header: send exactly one",
            ),
            AuthError::Jwt(check) => check.fmt(f),
            AuthError::Forbidden(Scope::Catalogue) => f.write_str(
                "the API key holds none of the scopes that read the catalogue: `eligibility`, \
                 `devices` or `plans`",
            ),
            AuthError::Forbidden(scope) => {
                write!(
                    f,
                    "the API key lacks the `{scope}` scope this operation needs"
                )
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysDoc {
    #[serde(default)]
    keys: Vec<KeyDoc>,
    /// Issuers whose signed JWTs are taken in place of a key ([`jwt`]).
    #[serde(default)]
    jwt_issuers: Vec<jwt::IssuerDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    id: String,
    tenant: String,
    scopes: Vec<Scope>,
    sha256: String,
}

/// The configured keys, by the SHA-256 of the key. Empty means open mode.
#[derive(Debug)]
pub struct ApiKeys {
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
    open: Arc<Caller>,
    jwt: Option<Arc<jwt::Issuers>>,
}

impl ApiKeys {
    /// No keys: every request is allowed, on the base rule set.
    pub fn open() -> Self {
        Self {
            by_hash: HashMap::new(),
            open: Arc::new(Caller::open()),
            jwt: None,
        }
    }

    /// Parses a keys document (YAML or JSON: `keys: [{id, tenant, scopes, sha256}]`, and
    /// `jwt_issuers: [...]`, [`jwt`]).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: KeysDoc = serde_saphyr::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().lines().next().unwrap_or_default()))?;
        let mut keys = Self::open();
        if !doc.jwt_issuers.is_empty() {
            keys.jwt = Some(Arc::new(jwt::Issuers::from_docs(doc.jwt_issuers)?));
        }
        for (i, k) in doc.keys.into_iter().enumerate() {
            let hash = parse_hex32(&k.sha256)
                .with_context(|| format!("keys[{i}] ({}): sha256 must be 64 hex digits", k.id))?;
            if k.tenant.trim().is_empty() {
                bail!("keys[{i}] ({}): tenant must not be empty", k.id);
            }
            if k.scopes.is_empty() {
                bail!("keys[{i}] ({}): at least one scope is required", k.id);
            }
            let caller = Caller {
                key_id: Some(k.id.clone()),
                tenant: Some(k.tenant),
                scopes: k.scopes,
            };
            if keys.by_hash.insert(hash, Arc::new(caller)).is_some() {
                bail!("keys[{i}] ({}): the same key hash is listed twice", k.id);
            }
        }
        // A name is one caller's: rate limits, watch budgets and logs key on it.
        let mut ids = keys.key_ids();
        ids.sort();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            bail!(
                "the name `{}` is given to two callers (keys and jwt_issuers): give each its own",
                w[0]
            );
        }
        Ok(keys)
    }

    /// Reads a keys file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading API keys file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("API keys file {}", path.display()))
    }

    /// True when no keys and no JWT issuers are configured.
    pub fn is_open(&self) -> bool {
        self.by_hash.is_empty() && self.jwt.is_none()
    }

    /// The trusted JWT issuers, if any (the server fetches the keys of those with a URL).
    pub fn jwt_issuers(&self) -> Option<&Arc<jwt::Issuers>> {
        self.jwt.as_ref()
    }

    /// The caller of a JWT; `take` takes its `jti` (see [`jwt::Issuers::verify`]).
    fn jwt_caller(&self, token: &[u8], take: bool) -> Result<Arc<Caller>, AuthError> {
        let issuers = self.jwt.as_ref().ok_or_else(|| {
            AuthError::Jwt(JwtCheck::IssuerUntrusted(
                "(any: this server trusts no JWT issuer; list them under jwt_issuers in the keys file)"
                    .into(),
            ))
        })?;
        let token = std::str::from_utf8(token)
            .map_err(|_| AuthError::Jwt(JwtCheck::Malformed("not UTF-8".into())))?;
        issuers.verify(token, take).map_err(AuthError::Jwt)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The tenants the keys belong to (for the start-up log).
    pub fn tenants(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .by_hash
            .values()
            .filter_map(|c| c.tenant.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    /// The caller a credential belongs to, whatever the scope (`None`: no key, an unknown key, or
    /// open mode). For the edge's per-key rate limit. A JWT is verified but its `jti` not taken
    /// (the door's authorization takes it): a JWT is verified twice when rate limits are on.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Option<Arc<Caller>> {
        self.caller_of(authorization).ok().flatten()
    }

    /// As [`Self::identify`], with why a credential is refused: `Ok(None)` without one.
    pub fn caller_of(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Arc<Caller>>, AuthError> {
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(None);
        };
        if jwt::looks_like_jwt(token) {
            return self.jwt_caller(token, false).map(Some);
        }
        let hash: [u8; 32] = Sha256::digest(token).into();
        self.by_hash
            .get(&hash)
            .cloned()
            .map(Some)
            .ok_or(AuthError::Unknown)
    }

    /// The names of the configured callers: every key's, every JWT issuer entry's.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_hash
            .values()
            .filter_map(|c| c.key_id.clone())
            .collect();
        ids.extend(self.jwt.iter().flat_map(|j| j.ids()));
        ids
    }

    /// Checks a credential (the `Authorization` header value or gRPC metadata) for a scope.
    pub fn authorize(
        &self,
        authorization: Option<&[u8]>,
        scope: Scope,
    ) -> Result<Arc<Caller>, AuthError> {
        let token = authorization.and_then(bearer_token);
        // A JWT is checked even on an open server: taking it without its checks would tell its
        // sender it was trusted.
        let caller = match token {
            Some(t) if jwt::looks_like_jwt(t) => self.jwt_caller(t, true)?,
            _ if self.is_open() => return Ok(self.open.clone()),
            Some(t) => {
                let hash: [u8; 32] = Sha256::digest(t).into();
                self.by_hash.get(&hash).ok_or(AuthError::Unknown)?.clone()
            }
            None => return Err(AuthError::Missing),
        };
        // `platform` administers every rule set, so it opens the admin operations too.
        if caller.has(scope) || (scope == Scope::Admin && caller.has(Scope::Platform)) {
            Ok(caller)
        } else {
            Err(AuthError::Forbidden(scope))
        }
    }
}

/// The credential of a request: its one `Authorization` header (REST) or `authorization`
/// metadata value (gRPC), `None` without one, and [`AuthError::Duplicate`] with more than one
/// (which one a proxy or a handler would pick is not something to leave to chance).
/// Each protocol hands the values it received (`protocol_server::edge::credential` for HTTP headers).
pub fn credential<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<&'a [u8]>, AuthError> {
    let mut values = values.into_iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::Duplicate);
    }
    Ok(first)
}

/// The token of a `Bearer <token>` credential (scheme case-insensitive), if it is one.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.strip_prefix(b" ")?.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn parse_hex32(s: &str) -> anyhow::Result<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        bail!("expected 64 hex digits, got {}", s.len());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = s.get(2 * i..2 * i + 2).context("not ASCII")?;
        *byte = u8::from_str_radix(pair, 16).with_context(|| format!("'{pair}' is not hex"))?;
    }
    Ok(out)
}

/// The hex SHA-256 of a key: what goes into the keys file.
pub fn hash_key(key: &str) -> String {
    const_hex::encode(Sha256::digest(key.as_bytes()))
}

/// Refuses to serve without keys on anything but loopback: an open server must not be reachable
/// from the network by accident.
pub fn check_exposure(keys: &ApiKeys, addrs: &[SocketAddr]) -> anyhow::Result<()> {
    if !keys.is_open() {
        return Ok(());
    }
    let exposed: Vec<String> = addrs
        .iter()
        .filter(|a| !a.ip().is_loopback())
        .map(ToString::to_string)
        .collect();
    if exposed.is_empty() {
        Ok(())
    } else {
        bail!(
            "refusing to start: no API keys are configured, and an open server may only listen on \
             loopback addresses, but {} {} not loopback. Configure keys with \
             PROTOCOL_API_KEYS_FILE (or PROTOCOL_API_KEYS), or bind 127.0.0.1 / [::1]",
            exposed.join(" and "),
            if exposed.len() == 1 { "is" } else { "are" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        let doc = format!(
            "keys:\n  - {{id: a, tenant: clinic-aurora, scopes: [eligibility], sha256: \"{}\"}}\n",
            hash_key("secret-a")
        );
        ApiKeys::parse(&doc).expect("keys parse")
    }

    #[test]
    fn the_catalogue_is_read_with_any_reading_scope_and_never_granted_by_name() {
        let doc = |scopes: &str| {
            format!(
                "keys:\n  - {{id: d, tenant: clinic-aurora, scopes: [{scopes}], sha256: \"{}\"}}\n",
                hash_key("secret-d")
            )
        };
        for (scopes, reads) in [
            ("devices", true),
            ("plans", true),
            ("eligibility", true),
            ("admin", false),
            ("audit", false),
        ] {
            let keys = ApiKeys::parse(&doc(scopes)).expect("keys parse");
            let got = keys.authorize(Some(b"Bearer secret-d"), Scope::Catalogue);
            assert_eq!(got.is_ok(), reads, "{scopes}: {got:?}");
            if !reads {
                let message = got.expect_err("refused").to_string();
                assert!(message.contains("`devices`"), "{message}");
            }
        }
        let err = ApiKeys::parse(&doc("catalogue")).expect_err("not grantable");
        assert!(format!("{err:#}").contains("catalogue"), "{err:#}");
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn scopes_and_unknown_keys() {
        let k = keys();
        let c = k
            .authorize(Some(b"Bearer secret-a"), Scope::Eligibility)
            .expect("authorized");
        assert_eq!(c.tenant.as_deref(), Some("clinic-aurora"));
        assert_eq!(
            k.authorize(Some(b"Bearer secret-a"), Scope::Plans),
            Err(AuthError::Forbidden(Scope::Plans))
        );
        assert_eq!(
            k.authorize(Some(b"Bearer nope"), Scope::Plans),
            Err(AuthError::Unknown)
        );
        assert_eq!(k.authorize(None, Scope::Plans), Err(AuthError::Missing));
    }

    #[test]
    fn one_credential_only() {
        let (a, b): (&[u8], &[u8]) = (b"Bearer secret-a", b"Bearer other");
        assert_eq!(credential([]), Ok(None));
        assert_eq!(credential([a]), Ok(Some(a)));
        assert_eq!(credential([a, b]), Err(AuthError::Duplicate));
        let k = keys();
        assert_eq!(
            k.identify(Some(b"Bearer secret-a"))
                .and_then(|c| c.key_id.clone())
                .as_deref(),
            Some("a")
        );
        assert!(k.identify(Some(b"Bearer nope")).is_none());
    }

    #[test]
    fn exposure() {
        let open = ApiKeys::open();
        let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        assert!(check_exposure(&open, &[lo, lo]).is_ok());
        assert!(check_exposure(&open, &[lo, any]).is_err());
        assert!(check_exposure(&keys(), &[any, any]).is_ok());
    }

    #[test]
    fn a_name_is_one_caller_s() {
        let doc = format!(
            "keys:\n  - {{id: ehr, tenant: clinic-aurora, scopes: [eligibility], sha256: \"{}\"}}\n\
             jwt_issuers:\n  - {{id: ehr, issuer: \"https://ehr.example\", tenant: clinic-aurora, \
             scopes: [eligibility], audience: [x], algorithms: [ES256], jwks_url: \"https://ehr.example/jwks\"}}\n",
            hash_key("secret-e")
        );
        let err = ApiKeys::parse(&doc).expect_err("refused");
        assert!(format!("{err:#}").contains("`ehr`"), "{err:#}");
    }

    #[test]
    fn bad_hash_is_refused() {
        assert!(ApiKeys::parse("keys: [{id: a, tenant: t, scopes: [plans], sha256: zz}]").is_err());
    }
}
