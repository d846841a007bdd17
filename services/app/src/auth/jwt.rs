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
//! - **`tenant`**, when the token carries it, must be the issuer's clinic: the clinic always comes
//!   from the configuration, never from the token.

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

/// Seconds of clock difference allowed on `exp` and `iat`, and no more (RFC 8725).
const LEEWAY_SECS: u64 = 60;
/// The most `jti`s a replica remembers at once; past it (after forgetting expired ones) tokens
/// are refused rather than let through unchecked.
const MAX_REMEMBERED: usize = 100_000;

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

/// One trusted issuer, ready to verify.
struct Issuer {
    caller: Arc<Caller>,
    issuer: String,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    subjects: Vec<String>,
    jwks_url: Option<String>,
    keys: ArcSwap<JwkSet>,
    max_lifetime_secs: u64,
}

/// The trusted issuers, and the `jti`s already taken.
pub struct Issuers {
    by_iss: HashMap<String, Issuer>,
    seen: Mutex<HashMap<(String, String), u64>>,
    /// Set when a token names a key not loaded: the server's refresher fetches at once.
    wanted: AtomicBool,
}

impl fmt::Debug for Issuers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuers")
            .field("issuers", &self.by_iss.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The claims read (the rest are ignored).
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
    tenant: Option<String>,
}

/// Only the issuer, read before the key is known.
#[derive(Debug, Deserialize)]
struct Unverified {
    iss: Option<String>,
}

impl Issuers {
    /// The issuers of the keys file; refuses HS*/none, a missing key source, or both sources.
    pub(super) fn from_docs(docs: Vec<IssuerDoc>) -> anyhow::Result<Self> {
        let mut by_iss = HashMap::new();
        for (i, d) in docs.into_iter().enumerate() {
            let at = format!("jwt_issuers[{i}] ({})", d.id);
            if d.scopes.is_empty() || d.tenant.trim().is_empty() {
                bail!("{at}: a tenant and at least one scope are required");
            }
            if d.audience.is_empty() {
                bail!("{at}: audience must name at least one `aud` (e.g. the CDS service URL)");
            }
            let algorithms = d
                .algorithms
                .iter()
                .map(|a| algorithm(a).with_context(|| format!("{at}: algorithms")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if algorithms.is_empty() {
                bail!("{at}: algorithms must name at least one");
            }
            let keys = match (d.jwks, &d.jwks_url) {
                (Some(set), None) => set,
                (None, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                    JwkSet { keys: Vec::new() }
                }
                (None, Some(url)) => bail!("{at}: jwks_url must be an http(s) URL, not {url}"),
                (None, None) => bail!("{at}: give its keys, as jwks or jwks_url"),
                (Some(_), Some(_)) => bail!("{at}: give jwks or jwks_url, not both"),
            };
            let issuer = Issuer {
                caller: Arc::new(Caller {
                    key_id: Some(d.id.clone()),
                    tenant: Some(d.tenant),
                    scopes: d.scopes,
                }),
                issuer: d.issuer.clone(),
                audience: d.audience,
                algorithms,
                subjects: d.subjects,
                jwks_url: d.jwks_url,
                keys: ArcSwap::from_pointee(keys),
                max_lifetime_secs: d.max_lifetime_secs,
            };
            if by_iss.insert(d.issuer, issuer).is_some() {
                bail!("{at}: the same issuer is listed twice");
            }
        }
        Ok(Self {
            by_iss,
            seen: Mutex::new(HashMap::new()),
            wanted: AtomicBool::new(false),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.by_iss.is_empty()
    }

    /// The issuers whose keys are at a URL: `(iss, url)`, for the server's refresher.
    pub fn jwks_urls(&self) -> Vec<(String, String)> {
        self.by_iss
            .values()
            .filter_map(|i| i.jwks_url.clone().map(|u| (i.issuer.clone(), u)))
            .collect()
    }

    /// Replaces the keys of issuer `iss` (fetched from its `jwks_url`).
    pub fn set_keys(&self, iss: &str, keys: JwkSet) {
        if let Some(i) = self.by_iss.get(iss) {
            i.keys.store(Arc::new(keys));
        }
    }

    /// Whether a token named a key not loaded since the last call (the refresher fetches then).
    pub fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::Relaxed)
    }

    /// The caller a JWT speaks for, after every check; `take` also takes its `jti` (the one
    /// authorization of a request does; the edge's identification for rate limits does not).
    pub fn verify(&self, token: &str, take: bool) -> Result<Arc<Caller>, JwtCheck> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtCheck::Malformed(e.to_string()))?;
        let unverified = jsonwebtoken::dangerous::insecure_decode::<Unverified>(token)
            .map_err(|e| JwtCheck::Malformed(e.to_string()))?;
        let iss = unverified
            .claims
            .iss
            .ok_or_else(|| JwtCheck::ClaimMissing("iss".into()))?;
        let issuer = self
            .by_iss
            .get(&iss)
            .ok_or_else(|| JwtCheck::IssuerUntrusted(quoted(&iss)))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(JwtCheck::AlgorithmRefused(format!("{:?}", header.alg)));
        }
        if let Some(jku) = &header.jku
            && issuer.jwks_url.as_deref() != Some(jku.as_str())
        {
            return Err(JwtCheck::JkuUntrusted(quoted(jku)));
        }
        let keys = issuer.keys.load();
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if keys.keys.len() == 1 => keys.keys.first(),
            None => None,
        };
        let Some(jwk) = jwk else {
            self.wanted.store(true, Ordering::Relaxed);
            return Err(JwtCheck::KeyUnknown(quoted(
                header.kid.as_deref().unwrap_or("(none)"),
            )));
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| JwtCheck::Signature)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_audience(&issuer.audience);
        validation.set_issuer(&[issuer.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => JwtCheck::Signature,
                ErrorKind::ExpiredSignature => JwtCheck::Expired,
                ErrorKind::InvalidAudience => JwtCheck::Audience,
                ErrorKind::InvalidIssuer => JwtCheck::IssuerUntrusted(quoted(&iss)),
                ErrorKind::MissingRequiredClaim(c) => JwtCheck::ClaimMissing(c.clone()),
                ErrorKind::InvalidAlgorithm => {
                    JwtCheck::AlgorithmRefused(format!("{:?}", header.alg))
                }
                _ => JwtCheck::Malformed(e.to_string()),
            })?
            .claims;
        self.check_claims(issuer, &claims, take)?;
        Ok(issuer.caller.clone())
    }

    /// The checks jsonwebtoken does not make: `iat`, lifetime, `sub`, `tenant`, `jti`.
    fn check_claims(&self, issuer: &Issuer, c: &Claims, take: bool) -> Result<(), JwtCheck> {
        let now = now();
        let exp = c.exp.ok_or_else(|| JwtCheck::ClaimMissing("exp".into()))?;
        let iat = c.iat.ok_or_else(|| JwtCheck::ClaimMissing("iat".into()))?;
        let jti = c
            .jti
            .as_deref()
            .filter(|j| !j.is_empty())
            .ok_or_else(|| JwtCheck::ClaimMissing("jti".into()))?;
        if iat > now + LEEWAY_SECS {
            return Err(JwtCheck::Lifetime(format!(
                "issued in the future (`iat` {iat}, now {now})"
            )));
        }
        if exp.saturating_sub(iat) > issuer.max_lifetime_secs {
            return Err(JwtCheck::Lifetime(format!(
                "`exp` - `iat` is {} s, above the {} s its issuer may use",
                exp.saturating_sub(iat),
                issuer.max_lifetime_secs
            )));
        }
        let sub = c.sub.as_deref().unwrap_or_default();
        if !issuer.subjects.is_empty() && !issuer.subjects.iter().any(|s| s == sub) {
            return Err(JwtCheck::Subject(quoted(sub)));
        }
        if let Some(tenant) = &c.tenant
            && issuer.caller.tenant.as_deref() != Some(tenant.as_str())
        {
            return Err(JwtCheck::Tenant(quoted(tenant)));
        }
        let key = (issuer.issuer.clone(), jti.to_owned());
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&key) {
            return Err(JwtCheck::Replayed);
        }
        if take {
            if seen.len() >= MAX_REMEMBERED {
                seen.retain(|_, until| *until + LEEWAY_SECS >= now);
            }
            if seen.len() >= MAX_REMEMBERED {
                return Err(JwtCheck::Lifetime(
                    "too many live tokens to remember: try again shortly".into(),
                ));
            }
            seen.insert(key, exp);
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

/// Whether a bearer token is shaped as a JWT (three base64url parts, the first a JSON object):
/// an API key never is.
pub fn looks_like_jwt(token: &[u8]) -> bool {
    token.iter().filter(|&&b| b == b'.').count() == 2 && token.starts_with(b"eyJ")
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
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k1".into());
        let claims = json!({"iss": "https://ehr.example", "sub": "c", "aud": "https://cds.example/cds-services/x",
            "iat": now(), "exp": now() + 60, "jti": jti});
        let key = EncodingKey::from_ec_pem(PEM.as_bytes()).expect("pem");
        jsonwebtoken::encode(&h, &claims, &key).expect("sign")
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
            (json!({"jwks": null, "jwks_url": "ftp://x"}), "http(s) URL"),
            (json!({"jwks": null}), "jwks or jwks_url"),
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
