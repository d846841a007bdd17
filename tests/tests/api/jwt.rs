//! JWTs of trusted clients (CDS Hooks 2.0 "Trusting CDS Clients"; OAuth2 client-credentials
//! tokens) through the real binary: keys made here (P-256), served as a JWK set by a small HTTP
//! server the service fetches at start, tokens signed here; each failed check refused with its
//! own reason, over REST (the CDS call) and gRPC.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use protocol_server::auth::hash_key;
use protocol_tests::{KEY_AURORA, Server, ServerBuilder, workspace_root};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

const SERVICE: &str = "/cds-services/treatment-eligibility";
const ISSUER: &str = "https://ehr.example.org";
const AUDIENCE: &str = "https://cds.example.org/cds-services/treatment-eligibility";
const KID: &str = "ehr-key-1";

/// A signing key and its public JWK set.
struct Keys {
    private_pem: String,
    jwks: Value,
}

fn keys() -> Keys {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    let raw = pair.public_key_raw();
    assert_eq!((raw.len(), raw[0]), (65, 4));
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
    }]});
    Keys {
        private_pem: pair.serialize_pem(),
        jwks,
    }
}

/// Serves `jwks` at `/jwks.json`; its URL.
async fn jwks_server(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks.json", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    url
}

/// A keys file with Aurora's API key and the EHR as a trusted issuer of Aurora.
fn keys_file(jwks_url: &str) -> String {
    json!({
        "keys": [{"id": "aurora", "tenant": "clinic-aurora", "scopes": ["eligibility"],
                  "sha256": hash_key(KEY_AURORA)}],
        "jwt_issuers": [{
            "id": "ehr-example", "issuer": ISSUER, "tenant": "clinic-aurora",
            "scopes": ["eligibility"], "audience": [AUDIENCE], "algorithms": ["ES256"],
            "jwks_url": jwks_url,
        }],
    })
    .to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Valid claims, each call a new `jti`.
fn claims() -> Value {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    json!({"iss": ISSUER, "sub": "ehr-client", "aud": AUDIENCE, "iat": now(), "exp": now() + 120,
           "jti": format!("jti-{}-{n}", now())})
}

fn sign(keys: &Keys, header: Header, claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(keys.private_pem.as_bytes()).expect("pem");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn es256() -> Header {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(KID.to_owned());
    h
}

fn hook_call() -> Value {
    let text =
        std::fs::read_to_string(workspace_root().join("docs/examples/cds-appointment-book.json"))
            .expect("example");
    serde_json::from_str(&text).expect("json")
}

/// The status and body of the CDS call with `token`.
async fn cds(server: &Server, token: &str) -> (StatusCode, Value) {
    let res = http()
        .post(server.url(SERVICE))
        .bearer_auth(token)
        .json(&hook_call())
        .send()
        .await
        .expect("call");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn refused_with(server: &Server, token: &str, reason: &str) {
    let (status, body) = cds(server, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
    assert_eq!(body["reason"], reason, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_client_s_jwt_is_taken_once_and_every_failed_check_is_named() {
    let keys = keys();
    let url = jwks_server(keys.jwks.clone()).await;
    let server = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &keys_file(&url))
        .spawn()
        .expect("server");

    // A good token: the call is answered for the issuer's clinic, Aurora (a card names its rule set).
    let good = sign(&keys, es256(), &claims());
    let (status, body) = cds(&server, &good).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.to_string().contains("clinic-aurora"),
        "answered from Aurora's rule set: {body}"
    );
    // The same token again: its jti was taken.
    refused_with(&server, &good, "JWT_REPLAYED").await;

    // Each check on its own.
    let mut expired = claims();
    expired["iat"] = json!(now() - 400);
    expired["exp"] = json!(now() - 200);
    refused_with(&server, &sign(&keys, es256(), &expired), "JWT_EXPIRED").await;

    let mut other_aud = claims();
    other_aud["aud"] = json!("https://another.example/cds-services/x");
    refused_with(&server, &sign(&keys, es256(), &other_aud), "JWT_AUDIENCE").await;

    let mut untrusted = claims();
    untrusted["iss"] = json!("https://evil.example");
    refused_with(
        &server,
        &sign(&keys, es256(), &untrusted),
        "JWT_ISSUER_UNTRUSTED",
    )
    .await;

    let mut tenant = claims();
    tenant["tenant"] = json!("clinic-borealis");
    refused_with(
        &server,
        &sign(&keys, es256(), &tenant),
        "JWT_TENANT_MISMATCH",
    )
    .await;

    let mut long = claims();
    long["exp"] = json!(now() + 3600);
    refused_with(&server, &sign(&keys, es256(), &long), "JWT_LIFETIME").await;

    let mut no_jti = claims();
    no_jti.as_object_mut().expect("object").remove("jti");
    refused_with(&server, &sign(&keys, es256(), &no_jti), "JWT_CLAIM_MISSING").await;

    // Another key pair under the trusted kid: the signature does not verify.
    let forged = sign(&self::keys(), es256(), &claims());
    refused_with(&server, &forged, "JWT_SIGNATURE_INVALID").await;

    let mut unknown_kid = es256();
    unknown_kid.kid = Some("rotated-key".into());
    refused_with(
        &server,
        &sign(&keys, unknown_kid, &claims()),
        "JWT_KEY_UNKNOWN",
    )
    .await;

    let mut jku = es256();
    jku.jku = Some("https://evil.example/jwks.json".into());
    refused_with(&server, &sign(&keys, jku, &claims()), "JWT_JKU_UNTRUSTED").await;

    // The public key's bytes as an HMAC secret (RFC 8725's confusion): refused by algorithm.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(keys.jwks.to_string().as_bytes()),
    )
    .expect("sign");
    refused_with(&server, &hs, "JWT_ALGORITHM_REFUSED").await;

    // The refusal says which check failed, in words too.
    let (_, body) = cds(&server, &sign(&keys, es256(), &expired)).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );

    // API keys still work beside the issuers.
    let (status, _) = cds(&server, KEY_AURORA).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_verifier_serves_grpc() {
    use pb::treatment_protocol_service_client::TreatmentProtocolServiceClient;
    use protocol_tests::pb;

    let keys = keys();
    let url = jwks_server(keys.jwks.clone()).await;
    let server = ServerBuilder::new()
        .env("PROTOCOL_API_KEYS", &keys_file(&url))
        .spawn()
        .expect("server");
    let mut client = TreatmentProtocolServiceClient::new(server.channel().await.expect("channel"));
    let request = |token: &str| {
        let mut r = tonic::Request::new(pb::CheckEligibilityRequest {
            treatment: "microneedling".into(),
            date: "2026-12-01".into(),
            history: Some(pb::HistoryList::default()),
            ..Default::default()
        });
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("metadata"),
        );
        r
    };
    let answer = client
        .check_eligibility(request(&sign(&keys, es256(), &claims())))
        .await
        .expect("a good token is taken")
        .into_inner();
    assert_eq!(
        answer.ruleset.map(|r| r.id).as_deref(),
        Some("clinic-aurora")
    );
    let mut expired = claims();
    expired["iat"] = json!(now() - 400);
    expired["exp"] = json!(now() - 200);
    let status = client
        .check_eligibility(request(&sign(&keys, es256(), &expired)))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert_eq!(
        details.error_info().map(|i| i.reason.as_str()),
        Some("JWT_EXPIRED"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_server_refuses_a_jwt_rather_than_ignore_it() {
    let keys = keys();
    let server = ServerBuilder::new().spawn().expect("open server");
    refused_with(
        &server,
        &sign(&keys, es256(), &claims()),
        "JWT_ISSUER_UNTRUSTED",
    )
    .await;
    // Without a token the open server answers as before.
    let res = http()
        .post(server.url(SERVICE))
        .json(&hook_call())
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), StatusCode::OK);
}
