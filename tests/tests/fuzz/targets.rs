//! The fuzz targets (see the module table in `fuzz`).

use std::sync::LazyLock;
use std::time::Duration;

use prost::Message;
use prost::bytes::Bytes;
use protocol_engine::{EligibilityRequest, Format, RuleSet, RuleSetDoc, compile, parse_document};
use protocol_tests::json_pb::eligibility_pb;
use protocol_tests::raw::RawCodec;
use protocol_tests::{Server, ServerBuilder};
use tonic::codegen::http::uri::PathAndQuery;

use super::{corpus, run};

static BASE_DOC: LazyLock<RuleSetDoc> = LazyLock::new(|| {
    parse_document(include_str!("../../../rulesets/base.yaml"), Format::Yaml).expect("parses")
});

static BASE: LazyLock<RuleSet> = LazyLock::new(|| compile(&BASE_DOC, None).expect("compiles"));

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The general path as the server takes it: the strict JSON check, the typed read, the decision.
fn general(rs: &RuleSet, body: &[u8]) -> Option<Vec<u8>> {
    protocol_engine::wire::check_json(body, protocol_engine::wire::MAX_JSON_VALUES).ok()?;
    let req: EligibilityRequest = serde_json::from_slice(body).ok()?;
    let answer = rs.eligibility(&req).ok()?;
    serde_json::to_vec(&answer).ok()
}

#[test]
fn eligibility_json() {
    let rs = &*BASE;
    let seeds = corpus("eligibility_json", &["scripts/load-eligibility.json"]);
    run("eligibility_json", &seeds, |body| {
        let fast = rs.read_eligibility(body).map(|read| {
            let mut out = Vec::new();
            read.decide().write_json(&[], &mut out);
            out
        });
        match (fast, general(rs, body)) {
            (Some(got), Some(want)) if got != want => Err(format!(
                "the fast read and the general path answer differently:\n{}\n{}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            )),
            (Some(got), None) => Err(format!(
                "the fast read answered a body the general path refuses: {}",
                String::from_utf8_lossy(&got)
            )),
            _ => Ok(()),
        }
    });
}

#[test]
fn ruleset_yaml() {
    let seeds = corpus(
        "ruleset_yaml",
        &["rulesets/base.yaml", "rulesets/clinics/clinic-aurora.yaml"],
    );
    run("ruleset_yaml", &seeds, |bytes| {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(()); // the admin API refuses a body that is not UTF-8 before this
        };
        match parse_document(text, Format::Yaml) {
            Ok(doc) => {
                let base = doc.extends.is_some().then_some(&*BASE_DOC);
                if let Err(e) = compile(&doc, base)
                    && e.problems.is_empty()
                {
                    return Err("a refusal that names no problem".into());
                }
                Ok(())
            }
            Err(e) if e.problems.is_empty() => Err("a refusal that names no problem".into()),
            Err(_) => Ok(()),
        }
    });
}

/// Every `every`-th case, the server must still answer its liveness probe.
async fn alive(server: &Server) -> Result<(), String> {
    let res = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| format!("the server stopped answering: {e}"))?;
    if res.status() == 200 {
        Ok(())
    } else {
        Err(format!("/healthz answered {}", res.status()))
    }
}

#[test]
fn grpc_check_eligibility() {
    let rt = runtime();
    let server = ServerBuilder::new().spawn().expect("server starts");
    let seeds: Vec<Vec<u8>> = corpus("eligibility_json", &["scripts/load-eligibility.json"])
        .iter()
        .filter_map(|json| serde_json::from_slice(json).ok())
        .map(|req| eligibility_pb(&req).encode_to_vec())
        .collect();
    let channel = rt.block_on(server.channel()).expect("channel");
    let path = PathAndQuery::from_static(
        "/treatment.protocol.v1.TreatmentProtocolService/CheckEligibility",
    );
    let mut n = 0usize;
    run("grpc_check_eligibility", &seeds, |message| {
        n += 1;
        rt.block_on(async {
            let mut raw = tonic::client::Grpc::new(channel.clone());
            raw.ready().await.map_err(|e| e.to_string())?;
            let answer = raw
                .unary(
                    tonic::Request::new(Bytes::copy_from_slice(message)),
                    path.clone(),
                    RawCodec,
                )
                .await;
            if let Err(st) = answer
                && matches!(st.code(), tonic::Code::Internal | tonic::Code::Unknown)
            {
                return Err(format!("answered as a server failure: {st:?}"));
            }
            if n.is_multiple_of(50) {
                alive(&server).await?;
            }
            Ok(())
        })
    });
    rt.block_on(alive(&server))
        .expect("the server is up after the run");
}

#[test]
fn cds_hook() {
    let rt = runtime();
    let server = ServerBuilder::new().spawn().expect("server starts");
    let seeds = corpus("cds_hook", &["docs/examples/cds-appointment-book.json"]);
    let client = reqwest::Client::new();
    let url = server.url("/cds-services/treatment-eligibility");
    let mut n = 0usize;
    run("cds_hook", &seeds, |body| {
        n += 1;
        rt.block_on(async {
            let res = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            if res.status().is_server_error() {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                return Err(format!("answered {status}: {text}"));
            }
            if n.is_multiple_of(50) {
                alive(&server).await?;
            }
            Ok(())
        })
    });
    rt.block_on(alive(&server))
        .expect("the server is up after the run");
}
