//! JWTs signed by trusted clients: a CDS Hooks 2.0 client (an EHR, the CDS Hooks sandbox; the
//! specification's "Trusting CDS Clients") or a partner system with an OAuth2 client-credentials
//! token from its clinic's identity provider. An alternative to an API key, checked in the same
//! place ([`super::ApiKeys::authorize`]), so a token's caller is a [`Caller`] like a key's.
//!
//! Each trusted issuer is configured in the keys file (`jwt_issuers`): its `iss`, the clinic it
//! speaks for and the scopes it holds, the audiences it must name, the algorithms it signs with
//! (RS*, PS*, ES*, EdDSA; `none` and HS* are refused at load: a public key must never be tried as
//! an HMAC secret, RFC 8725), and its keys, inline (`jwks`) or at a URL (`jwks_url`, fetched by the
//! server at start and then every few minutes). Every check that fails has its own [`JwtCheck`],
//! so a 401 names which one.
//!
//! - **Replay.** Each `jti` is taken once per replica until its token expires; a token may live
//!   `max_lifetime_secs` (300 s by default) at most, which bounds how long a token replayed to
//!   another replica could be used.
//! - **`jku`** in a token's header must be the issuer's configured `jwks_url`: a key URL chosen by
//!   the caller would let any caller choose its own key.
//! - **`tenant`**: the clinic always comes from the configuration, never from the token. An
//!   issuer entry with `tenant_claim` (a multi-tenant EHR: one `iss`, one entry per clinic)
//!   requires the token's `tenant` and picks the entry by it; an entry without one takes a token
//!   whose `tenant`, if any, is the clinic's id.
//! - **Reading scopes only** (`eligibility`, `devices`, `plans`): a token names an issuer, not a
//!   person, so administration (and its four eyes) and the audit log stay with API keys.
//! - **Keys** at a `jwks_url` come over HTTPS (plain HTTP only from a loopback host); each key
//!   is used only for the algorithm and use it declares.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::{Caller, Scope};

/// Seconds of clock difference allowed on `exp`, `nbf` and `iat`, and no more (RFC 8725).
const LEEWAY_SECS: u64 = 60;
/// The most `jti`s a replica remembers for one issuer at once; past it (after forgetting expired
/// ones) that issuer's tokens are refused (503) rather than let through unchecked.
const MAX_REMEMBERED: usize = 100_000;
/// The longest `jti` taken (it is remembered).
const MAX_JTI_CHARS: usize = 256;
/// The longest lifetime an issuer may be configured to use.
const MAX_LIFETIME_SECS: u64 = 3600;
/// The scopes a JWT issuer may hold.
const READING_SCOPES: [Scope; 3] = [Scope::Eligibility, Scope::Devices, Scope::Plans];

/// Which check a JWT failed: each is its own 401 reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtCheck {
    /// Not three base64url parts with a JSON header and claims.
    Malformed(String),
    /// `iss` names no trusted issuer (or the server trusts none).
    IssuerUntrusted(String),
    /// `alg` is not one the issuer signs with.
    AlgorithmRefused(String),
    /// `jku` is not the issuer's configured `jwks_url`.
    JkuUntrusted(String),
    /// `kid` names no key of the issuer (or its keys are not loaded yet).
    KeyUnknown(String),
    /// The signature does not verify with the issuer's key.
    Signature,
    /// `exp` is past.
    Expired,
    /// `iat` is in the future, or `exp` - `iat` is longer than the issuer allows.
    Lifetime(String),
    /// `aud` is not one of the issuer's audiences.
    Audience,
    /// `sub` is not one of the issuer's subjects.
    Subject(String),
    /// A required claim is missing (`iss`, `sub`, `aud`, `exp`, `iat`, `jti`).
    ClaimMissing(String),
    /// `tenant` is not the issuer's clinic.
    Tenant(String),
    /// This `jti` was used before.
    Replayed,
    /// The replica remembers as many live `jti`s of this issuer as it may: a capacity limit,
    /// not a fault of the token (503).
    Busy,
}

impl JwtCheck {
    /// The stable reason (REST problem `reason`, gRPC `ErrorInfo.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            JwtCheck::Malformed(_) => "JWT_MALFORMED",
            JwtCheck::IssuerUntrusted(_) => "JWT_ISSUER_UNTRUSTED",
            JwtCheck::AlgorithmRefused(_) => "JWT_ALGORITHM_REFUSED",
            JwtCheck::JkuUntrusted(_) => "JWT_JKU_UNTRUSTED",
            JwtCheck::KeyUnknown(_) => "JWT_KEY_UNKNOWN",
            JwtCheck::Signature => "JWT_SIGNATURE_INVALID",
            JwtCheck::Expired => "JWT_EXPIRED",
            JwtCheck::Lifetime(_) => "JWT_LIFETIME",
            JwtCheck::Audience => "JWT_AUDIENCE",
            JwtCheck::Subject(_) => "JWT_SUBJECT_UNTRUSTED",
            JwtCheck::ClaimMissing(_) => "JWT_CLAIM_MISSING",
            JwtCheck::Tenant(_) => "JWT_TENANT_MISMATCH",
            JwtCheck::Replayed => "JWT_REPLAYED",
            JwtCheck::Busy => "JWT_REPLAY_CACHE_FULL",
        }
    }
}

impl fmt::Display for JwtCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtCheck::Malformed(why) => write!(f, "the JWT cannot be read: {why}"),
            JwtCheck::IssuerUntrusted(iss) => {
                write!(f, "the JWT's issuer (`iss`) {iss} is not trusted by this server")
            }
            JwtCheck::AlgorithmRefused(alg) => write!(
                f,
                "the JWT is signed with `{alg}`, which its issuer is not configured to use"
            ),
            JwtCheck::JkuUntrusted(jku) => write!(
                f,
                "the JWT's `jku` {jku} is not its issuer's configured JWKS URL"
            ),
            JwtCheck::KeyUnknown(kid) => {
                write!(f, "the JWT's key (`kid` {kid}) is not one of its issuer's keys")
            }
            JwtCheck::Signature => f.write_str("the JWT's signature does not verify"),
            JwtCheck::Expired => f.write_str("the JWT has expired (`exp`)"),
            JwtCheck::Lifetime(why) => write!(f, "the JWT's lifetime is refused: {why}"),
            JwtCheck::Audience => f.write_str(
                "the JWT's audience (`aud`) is not this service's endpoint as configured for its issuer",
            ),
            JwtCheck::Subject(sub) => {
                write!(f, "the JWT's subject (`sub`) {sub} is not trusted for its issuer")
            }
            JwtCheck::ClaimMissing(claim) => {
                write!(f, "the JWT lacks the required claim `{claim}`")
            }
            JwtCheck::Tenant(tenant) => write!(
                f,
                "the JWT's `tenant` {tenant} is not the clinic its issuer speaks for"
            ),
            JwtCheck::Replayed => {
                f.write_str("the JWT's `jti` was used before: send a new token for each call")
            }
            JwtCheck::Busy => f.write_str(
                "this replica holds as many unexpired tokens of this issuer as it may: retry shortly",
            ),
        }
    }
}

/// A trusted issuer in the keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IssuerDoc {
    /// The name of this trust (logs, the decision log's `key_id`).
    id: String,
    /// The `iss` its tokens carry.
    issuer: String,
    tenant: String,
    scopes: Vec<Scope>,
    /// The `aud` values accepted (for CDS Hooks, the service endpoint URL the EHR calls).
    audience: Vec<String>,
    /// The algorithms it signs with.
    algorithms: Vec<String>,
    /// The `sub` values accepted; empty: any.
    #[serde(default)]
    subjects: Vec<String>,
    /// The `tenant` claim that selects this entry (a multi-tenant EHR lists one entry per clinic
    /// under one `issuer`); absent: a token's `tenant`, if any, must be `tenant` itself.
    #[serde(default)]
    tenant_claim: Option<String>,
    #[serde(default)]
    jwks: Option<JwkSet>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default = "default_lifetime")]
    max_lifetime_secs: u64,
}

fn default_lifetime() -> u64 {
    300
}

/// One trusted issuer entry, ready to verify.
struct Issuer {
    caller: Arc<Caller>,
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    subjects: Vec<String>,
    tenant_claim: Option<String>,
    jwks_url: Option<String>,
    /// The keys, shared by every entry of the same `iss` (fetched once).
    keys: Arc<ArcSwap<JwkSet>>,
    max_lifetime_secs: u64,
    /// The `jti`s taken, with their `exp`: one map per entry, so one busy issuer cannot crowd
    /// out another.
    seen: Mutex<HashMap<String, u64>>,
    /// Set when a token names a key not held: the server's refresher fetches this issuer's.
    wanted: Arc<AtomicBool>,
}

/// The trusted issuers, by `iss` (several entries for a multi-tenant EHR).
pub struct Issuers {
    by_iss: HashMap<String, Vec<Issuer>>,
}

impl fmt::Debug for Issuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuers")
            .field("issuers", &self.by_iss.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Issuer {
    fn from_doc(d: IssuerDoc) -> anyhow::Result<Self> {
        if d.tenant.trim().is_empty() {
            bail!("a tenant (the clinic) is required");
        }
        if d.scopes.is_empty() {
            bail!("at least one scope is required");
        }
        if let Some(s) = d.scopes.iter().find(|s| !READING_SCOPES.contains(s)) {
            bail!(
                "scope `{s}` is refused: a JWT issuer may hold eligibility, devices and plans \
                 (administration and the audit log need an API key of a person)"
            );
        }
        if d.audience.is_empty() {
            bail!("audience must name at least one `aud` (e.g. the CDS service URL)");
        }
        if d.max_lifetime_secs == 0 || d.max_lifetime_secs > MAX_LIFETIME_SECS {
            bail!("max_lifetime_secs must be 1 to {MAX_LIFETIME_SECS}");
        }
        let algorithms = d
            .algorithms
            .iter()
            .map(|a| algorithm(a).context("algorithms"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if algorithms.is_empty() {
            bail!("algorithms must name at least one");
        }
        let keys = match (d.jwks, &d.jwks_url) {
            (Some(set), None) => set,
            (None, Some(url)) => {
                key_url(url)?;
                JwkSet { keys: Vec::new() }
            }
            (None, None) => bail!("give its keys, as jwks or jwks_url"),
            (Some(_), Some(_)) => bail!("give jwks or jwks_url, not both"),
        };
        Ok(Issuer {
            caller: Arc::new(Caller {
                key_id: Some(d.id),
                tenant: Some(d.tenant),
                scopes: d.scopes,
            }),
            issuer: d.issuer,
            audience: d.audience,
            algorithms,
            subjects: d.subjects,
            tenant_claim: d.tenant_claim,
            jwks_url: d.jwks_url,
            keys: Arc::new(ArcSwap::from_pointee(keys)),
            max_lifetime_secs: d.max_lifetime_secs,
            seen: Mutex::new(HashMap::new()),
            wanted: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A key URL: HTTPS, or plain HTTP to a loopback host only (a key set anyone on the path could
/// swap would let them sign as the issuer).
fn key_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let host = url
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default())
        .map(|authority| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
    match host {
        Some("127.0.0.1" | "localhost" | "[::1]") => Ok(()),
        Some(_) => {
            bail!("jwks_url {url}: keys come over https:// (http:// only from a loopback host)")
        }
        None => bail!("jwks_url must be an https:// URL, not {url}"),
    }
}

/// The claims read (the rest are ignored).
#[derive(Debug, Deserialize)]
#[expect(
    dead_code,
    reason = "`nbf` is checked by jsonwebtoken; read here so its type is checked"
)]
struct Claims {
    nbf: Option<u64>,
    sub: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
    tenant: Option<String>,
}

/// The issuer (and tenant, which selects a multi-tenant issuer's entry), read before the key is
/// known; both are checked again once the signature is.
#[derive(Debug, Deserialize)]
struct Unverified {
    iss: Option<String>,
    tenant: Option<String>,
}

impl Issuers {
    /// The issuers of the keys file; refuses HS*/none, other than reading scopes, a missing
    /// key source or both, a key URL over plain HTTP to another host, and entries of one `iss`
    /// that cannot be told apart.
    pub(super) fn from_docs(docs: Vec<IssuerDoc>) -> anyhow::Result<Self> {
        let mut by_iss: HashMap<String, Vec<Issuer>> = HashMap::new();
        for (i, d) in docs.into_iter().enumerate() {
            let at = format!("jwt_issuers[{i}] ({})", d.id);
            let issuer = Issuer::from_doc(d).with_context(|| at.clone())?;
            let entries = by_iss.entry(issuer.issuer.clone()).or_default();
            if let Some(first) = entries.first() {
                if first.tenant_claim.is_none() || issuer.tenant_claim.is_none() {
                    bail!("{at}: the issuer is listed twice: give each entry its `tenant_claim`");
                }
                if entries
                    .iter()
                    .any(|e| e.tenant_claim == issuer.tenant_claim)
                {
                    bail!("{at}: the issuer and tenant_claim are listed twice");
                }
                if first.jwks_url != issuer.jwks_url {
                    bail!("{at}: entries of one issuer must name the same keys (jwks_url)");
                }
            }
            let mut issuer = issuer;
            if let Some(first) = entries.first() {
                issuer.keys = first.keys.clone();
                issuer.wanted = first.wanted.clone();
            }
            entries.push(issuer);
        }
        Ok(Self { by_iss })
    }

    pub fn is_empty(&self) -> bool {
        self.by_iss.is_empty()
    }

    /// The name (`id`) of every entry, for the edge's per-caller rate limits.
    pub fn ids(&self) -> Vec<String> {
        self.entries()
            .filter_map(|i| i.caller.key_id.clone())
            .collect()
    }

    fn entries(&self) -> impl Iterator<Item = &Issuer> {
        self.by_iss.values().flatten()
    }

    /// The issuers whose keys are at a URL: `(iss, url)`, once each, for the server's refresher.
    pub fn jwks_urls(&self) -> Vec<(String, String)> {
        self.by_iss
            .iter()
            .filter_map(|(iss, e)| Some((iss.clone(), e.first()?.jwks_url.clone()?)))
            .collect()
    }

    /// Replaces the keys of issuer `iss` (fetched from its `jwks_url`).
    pub fn set_keys(&self, iss: &str, keys: JwkSet) {
        if let Some(first) = self.by_iss.get(iss).and_then(|e| e.first()) {
            first.keys.store(Arc::new(keys));
        }
    }

    /// Whether a token named a key of `iss` not held since the last call (the refresher fetches
    /// that issuer's keys then, no more often than it allows).
    pub fn take_wanted(&self, iss: &str) -> bool {
        self.by_iss
            .get(iss)
            .and_then(|e| e.first())
            .is_some_and(|i| i.wanted.swap(false, Ordering::Relaxed))
    }

    /// The caller a JWT speaks for, after every check; `take` also takes its `jti` (the one
    /// authorization of a request does; the edge's identification for rate limits does not).
    pub fn verify(&self, token: &str, take: bool) -> Result<Arc<Caller>, JwtCheck> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtCheck::Malformed(e.to_string()))?;
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Unverified>(token)
            .map_err(|e| JwtCheck::Malformed(e.to_string()))?
            .claims;
        let iss = unverified
            .iss
            .ok_or_else(|| JwtCheck::ClaimMissing("iss".into()))?;
        let issuer = self.entry(&iss, unverified.tenant.as_deref())?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(JwtCheck::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        if let Some(jku) = &header.jku
            && issuer.jwks_url.as_deref() != Some(jku.as_str())
        {
            return Err(JwtCheck::JkuUntrusted(quoted(jku)));
        }
        let key = issuer.key(&header)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&issuer.audience);
        validation.set_issuer(&[issuer.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtCheck::Signature,
                ErrorKind::ExpiredSignature => JwtCheck::Expired,
                ErrorKind::ImmatureSignature => {
                    JwtCheck::Lifetime("not valid before its `nbf`".into())
                }
                ErrorKind::InvalidAudience => JwtCheck::Audience,
                ErrorKind::InvalidIssuer => JwtCheck::IssuerUntrusted(quoted(&iss)),
                ErrorKind::MissingRequiredClaim(c) => JwtCheck::ClaimMissing(c.clone()),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidKeyFormat => {
                    JwtCheck::AlgorithmRefused(format!(
                        "{:?} with a key of another type",
                        header.alg
                    ))
                }
                _ => JwtCheck::Malformed(e.to_string()),
            })?
            .claims;
        issuer.check_claims(&claims, take)?;
        Ok(issuer.caller.clone())
    }

    /// The entry of `iss` a token's (unverified) `tenant` selects; checked again once verified.
    fn entry(&self, iss: &str, tenant: Option<&str>) -> Result<&Issuer, JwtCheck> {
        let entries = self
            .by_iss
            .get(iss)
            .ok_or_else(|| JwtCheck::IssuerUntrusted(quoted(iss)))?;
        match entries.as_slice() {
            [one] if one.tenant_claim.is_none() => Ok(one),
            _ => {
                let tenant = tenant.ok_or_else(|| JwtCheck::ClaimMissing("tenant".into()))?;
                entries
                    .iter()
                    .find(|e| e.tenant_claim.as_deref() == Some(tenant))
                    .ok_or_else(|| JwtCheck::Tenant(quoted(tenant)))
            }
        }
    }
}

impl Issuer {
    /// The key a header names (`kid`; the only key without one), for the algorithm and use it
    /// declares.
    fn key(&self, header: &jsonwebtoken::Header) -> Result<DecodingKey, JwtCheck> {
        let keys = self.keys.load();
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        };
        let kid = || quoted(header.kid.as_deref().unwrap_or("(none)"));
        let Some(jwk) = jwk else {
            if self.jwks_url.is_some() {
                self.wanted.store(true, Ordering::Relaxed);
            }
            return Err(JwtCheck::KeyUnknown(kid()));
        };
        if let Some(alg) = jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(JwtCheck::AlgorithmRefused(format!(
                "{:?}, but the key is for {alg:?}",
                header.alg
            )));
        }
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            return Err(JwtCheck::KeyUnknown(format!(
                "{} (not a signing key)",
                kid()
            )));
        }
        DecodingKey::from_jwk(jwk)
            .map_err(|_| JwtCheck::KeyUnknown(format!("{} (unusable)", kid())))
    }

    /// The checks jsonwebtoken does not make: `iat`, lifetime, `sub`, `tenant`, `jti`.
    fn check_claims(&self, c: &Claims, take: bool) -> Result<(), JwtCheck> {
        let now = now();
        let exp = c.exp.ok_or_else(|| JwtCheck::ClaimMissing("exp".into()))?;
        let iat = c.iat.ok_or_else(|| JwtCheck::ClaimMissing("iat".into()))?;
        let jti = c
            .jti
            .as_deref()
            .filter(|j| !j.is_empty())
            .ok_or_else(|| JwtCheck::ClaimMissing("jti".into()))?;
        if jti.chars().count() > MAX_JTI_CHARS {
            return Err(JwtCheck::Malformed(format!(
                "`jti` is longer than {MAX_JTI_CHARS} characters"
            )));
        }
        if iat > now.saturating_add(LEEWAY_SECS) {
            return Err(JwtCheck::Lifetime(format!(
                "issued in the future (`iat` {iat}, now {now})"
            )));
        }
        if exp.saturating_sub(iat) > self.max_lifetime_secs {
            return Err(JwtCheck::Lifetime(format!(
                "`exp` - `iat` is {} s, above the {} s its issuer may use",
                exp.saturating_sub(iat),
                self.max_lifetime_secs
            )));
        }
        let sub = c.sub.as_deref().unwrap_or_default();
        if !self.subjects.is_empty() && !self.subjects.iter().any(|s| s == sub) {
            return Err(JwtCheck::Subject(quoted(sub)));
        }
        let tenant_ok = match (&self.tenant_claim, &c.tenant) {
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
            (None, Some(got)) => self.caller.tenant.as_deref() == Some(got.as_str()),
            (None, None) => true,
        };
        if !tenant_ok {
            return Err(JwtCheck::Tenant(quoted(
                c.tenant.as_deref().unwrap_or("(none)"),
            )));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(jti) {
            return Err(JwtCheck::Replayed);
        }
        if take {
            if seen.len() >= MAX_REMEMBERED {
                seen.retain(|_, until| until.saturating_add(LEEWAY_SECS) >= now);
            }
            if seen.len() >= MAX_REMEMBERED {
                return Err(JwtCheck::Busy);
            }
            seen.insert(jti.to_owned(), exp);
        }
        Ok(())
    }
}

/// An algorithm of the keys file: asymmetric only.
fn algorithm(name: &str) -> anyhow::Result<Algorithm> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown algorithm `{name}`"))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        bail!(
            "`{name}` is refused: a JWT from a client must be signed with its private key (RS*, PS*, ES*, EdDSA), never a shared secret"
        );
    }
    Ok(alg)
}

/// A caller-supplied string, quoted and shortened for a message.
fn quoted(s: &str) -> String {
    format!("'{}'", s.chars().take(120).collect::<String>())
}

/// Seconds since the epoch (a JWT's clock).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Whether a bearer token is a JWT: three parts, the first a JOSE header that reads. An API key
/// never is (keys made as docs/configuration.md says hold no `.`).
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|&&b| b == b'.').count() == 2
        && std::str::from_utf8(token).is_ok_and(|t| jsonwebtoken::decode_header(t).is_ok())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// A P-256 key made for these tests only (`openssl ecparam -name prime256v1`), and its JWK.
    const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkxMWIlAYEWDJI/aI
VSfEVVP89Mo/qiA+Y2o904SVPoahRANCAATfSdDsTo7wKqyBO2EtoQVWtUPu6mG3
jmIHgn0aAreV34dURgnb7GhtLh/erfSI0UwZqSTF51S0RUtacFH1zrYk
-----END PRIVATE KEY-----
";

    fn doc(extra: serde_json::Value) -> IssuerDoc {
        let mut d = json!({
            "id": "ehr", "issuer": "https://ehr.example", "tenant": "clinic-aurora",
            "scopes": ["eligibility"], "audience": ["https://cds.example/cds-services/x"],
            "algorithms": ["ES256"],
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
                "x": "30nQ7E6O8CqsgTthLaEFVrVD7upht45iB4J9GgK3ld8",
                "y": "h1RGCdvsaG0uH96t9IjRTBmpJMXnVLRFS1pwUfXOtiQ"}]},
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            d[k] = v.clone();
        }
        serde_json::from_value(d).expect("doc")
    }

    fn issuers() -> Issuers {
        Issuers::from_docs(vec![doc(json!({}))]).expect("issuers")
    }

    fn token(jti: &str) -> String {
        token_with(jti, json!({}))
    }

    /// A signed token with `extra` claims over the good ones.
    fn token_with(jti: &str, extra: serde_json::Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        let mut claims = json!({"iss": "https://ehr.example", "sub": "c", "aud": "https://cds.example/cds-services/x",
            "iat": now(), "exp": now() + 60, "jti": jti});
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        let key = EncodingKey::from_ec_pem(PEM.as_bytes()).expect("pem");
        jsonwebtoken::encode(&h, &claims, &key).expect("sign")
    }

    #[test]
    fn a_multi_tenant_issuer_picks_the_clinic_by_the_tenant_claim_and_never_by_default() {
        let i = Issuers::from_docs(vec![
            doc(json!({"id": "ehr-a", "tenant_claim": "org-17"})),
            doc(json!({"id": "ehr-b", "tenant": "clinic-borealis", "tenant_claim": "org-42"})),
        ])
        .expect("issuers");
        let b = i
            .verify(&token_with("m1", json!({"tenant": "org-42"})), true)
            .expect("taken");
        assert_eq!(b.tenant.as_deref(), Some("clinic-borealis"));
        assert_eq!(
            i.verify(&token("m2"), true),
            Err(JwtCheck::ClaimMissing("tenant".into()))
        );
        assert_eq!(
            i.verify(&token_with("m3", json!({"tenant": "org-99"})), true),
            Err(JwtCheck::Tenant("'org-99'".into()))
        );
        // Listed twice without telling the entries apart: refused at load.
        let err = Issuers::from_docs(vec![doc(json!({})), doc(json!({"id": "again"}))])
            .expect_err("refused");
        assert!(format!("{err:#}").contains("tenant_claim"), "{err:#}");
    }

    #[test]
    fn not_yet_valid_and_key_type_mismatches_are_named() {
        let i = issuers();
        assert!(matches!(
            i.verify(&token_with("n1", json!({"nbf": now() + 600})), true),
            Err(JwtCheck::Lifetime(_))
        ));
        // The key says it is for ES384; the header says ES256.
        let i = Issuers::from_docs(vec![doc(json!({"algorithms": ["ES256", "ES384"],
            "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES384",
                "x": "30nQ7E6O8CqsgTthLaEFVrVD7upht45iB4J9GgK3ld8",
                "y": "h1RGCdvsaG0uH96t9IjRTBmpJMXnVLRFS1pwUfXOtiQ"}]}}))])
        .expect("issuers");
        assert!(matches!(
            i.verify(&token("n2"), true),
            Err(JwtCheck::AlgorithmRefused(_))
        ));
    }

    #[test]
    fn a_good_token_is_taken_once_and_identifying_does_not_take_it() {
        let i = issuers();
        let t = token("a");
        assert!(i.verify(&t, false).is_ok());
        let caller = i.verify(&t, true).expect("taken");
        assert_eq!(caller.tenant.as_deref(), Some("clinic-aurora"));
        assert_eq!(i.verify(&t, true), Err(JwtCheck::Replayed));
        assert_eq!(i.verify(&t, false), Err(JwtCheck::Replayed));
    }

    #[test]
    fn shared_secrets_and_half_configured_issuers_are_refused_at_load() {
        for (extra, says) in [
            (json!({"algorithms": ["HS256"]}), "never a shared secret"),
            (json!({"algorithms": ["none"]}), "unknown algorithm"),
            (json!({"audience": []}), "audience"),
            (json!({"jwks_url": "https://ehr.example/jwks"}), "not both"),
            (json!({"jwks": null, "jwks_url": "ftp://x"}), "https:// URL"),
            (json!({"jwks": null}), "jwks or jwks_url"),
            (
                json!({"scopes": ["eligibility", "platform"]}),
                "scope `platform` is refused",
            ),
            (json!({"scopes": ["admin"]}), "scope `admin` is refused"),
            (
                json!({"jwks": null, "jwks_url": "http://ehr.example/jwks"}),
                "https://",
            ),
            (json!({"max_lifetime_secs": 86400}), "max_lifetime_secs"),
        ] {
            let err = Issuers::from_docs(vec![doc(extra.clone())]).expect_err("refused");
            assert!(format!("{err:#}").contains(says), "{extra}: {err:#}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// No token but the one the issuer signed is taken: any one byte of it changed (header,
        /// claims or signature) is refused, with a named check.
        #[test]
        fn a_token_changed_anywhere_is_refused(at in any::<prop::sample::Index>(), byte in b'-'..=b'z') {
            let i = issuers();
            let good = token("p");
            let mut bad = good.clone().into_bytes();
            let n = at.index(bad.len());
            prop_assume!(bad[n] != byte);
            bad[n] = byte;
            let bad = String::from_utf8(bad).expect("ascii");
            prop_assert!(i.verify(&bad, true).is_err(), "taken: {bad}");
            prop_assert!(i.verify(&good, true).is_ok());
        }
    }
}
