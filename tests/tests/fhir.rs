//! FHIR conformance with a FHIR library made by others (issue 15, done-when): the real binary's
//! `GET /fhir/Questionnaire/{ruleset}` (base and the Aurora overlay) and QuestionnaireResponses
//! built from it are parsed by the R4B models of PyPI's `fhir.resources` and checked for the
//! invariants those models leave out (`scripts/fhir_validate.py`: que-1, que-2, que-4 to que-7,
//! que-10 to que-12, enableWhen targets; a response's linkIds and value types against its
//! Questionnaire), and the responses the validator accepts are accepted by the service and
//! decide as the same facts. The validator is shown to fail on broken resources, so a pass
//! means something.
//!
//! The library is what `scripts/check-fhir --install-only` installs (pinned), found through
//! `FHIR_TOOLS` (scripts/test sets it), else in the cache folder the script fills. Without it
//! (plain `cargo test` on a fresh machine) the test says so and stops; under scripts/test it is
//! always there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test states what it expects by failing loudly (the workspace denies these in production code)"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use protocol_tests::fhir::response_to;
use protocol_tests::fixtures::healthy_facts;
use protocol_tests::{Server, workspace_root};
use serde_json::{Value, json};

/// The venv's Python: `FHIR_TOOLS` (must hold it), else the newest complete
/// `~/.cache/treatment-protocol/fhir-*`.
fn python() -> Option<PathBuf> {
    let dir = match std::env::var_os("FHIR_TOOLS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join(".pins").is_file(),
                "FHIR_TOOLS={} holds no tools: run scripts/check-fhir --install-only",
                dir.display()
            );
            dir
        }
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            std::fs::read_dir(cache.join("treatment-protocol"))
                .ok()?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("fhir-"))
                .map(|e| e.path())
                .filter(|p| p.join(".pins").is_file())
                .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())?
        }
    };
    Some(dir.join("venv/bin/python"))
}

/// Runs the validator on the resources (written to files); `Ok` when it accepts them, else its
/// report.
fn validate(python: &Path, mode: &str, resources: &[&Value]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join("scripts/fhir_validate.py"))
        .arg(mode);
    for (i, r) in resources.iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, serde_json::to_vec(r).expect("json")).expect("write");
        cmd.arg(file);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(report)
    }
}

async fn questionnaire(server: &Server, path: &str) -> Value {
    let res = reqwest::get(server.url(path)).await.expect("send");
    assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
    assert_eq!(res.headers()["content-type"], "application/fhir+json");
    res.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_resources_accepts_the_questionnaire_and_the_responses_the_service_reads() {
    let Some(python) = python() else {
        eprintln!(
            "NOTE: no FHIR tools (FHIR_TOOLS, ~/.cache/treatment-protocol/fhir-*): not run; \
             scripts/test installs them (scripts/check-fhir --install-only)"
        );
        return;
    };
    let server = Server::start().expect("server starts");
    for path in [
        "/fhir/Questionnaire/base",
        "/fhir/Questionnaire/clinic-aurora?clinic=clinic-aurora",
    ] {
        let q = questionnaire(&server, path).await;
        validate(&python, "questionnaire", &[&q]).unwrap_or_else(|r| panic!("{path}: {r}"));
    }
    let q = questionnaire(&server, "/fhir/Questionnaire/base").await;
    let capabilities = questionnaire(&server, "/fhir/metadata").await;
    validate(&python, "capability", &[&capabilities]).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(
        capabilities["rest"][0]["resource"][0]["type"], "Questionnaire",
        "{capabilities:#}"
    );
    // Errors on the FHIR base are OperationOutcomes that FHIR's models take: a field at fault,
    // an unknown Questionnaire, an unknown path.
    for path in [
        "/fhir/Questionnaire/base?color=red",
        "/fhir/Questionnaire/nope",
        "/fhir/Patient/1",
    ] {
        let res = reqwest::get(server.url(path)).await.expect("send");
        assert!(res.status().is_client_error(), "{path}");
        assert_eq!(res.headers()["content-type"], "application/fhir+json");
        let outcome: Value = res.json().await.expect("json");
        assert_eq!(
            outcome["resourceType"], "OperationOutcome",
            "{path}: {outcome}"
        );
        validate(&python, "outcome", &[&outcome]).unwrap_or_else(|r| panic!("{path}: {r}"));
    }
    let mut broken = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "bad", "code": "invalid"}]});
    assert!(
        validate(&python, "outcome", &[&broken]).is_err(),
        "a bad severity is refused"
    );
    broken["issue"] = json!([]);
    assert!(
        validate(&python, "outcome", &[&broken]).is_err(),
        "an outcome has an issue"
    );
    // A search answers a searchset Bundle FHIR's models take, its entry the Questionnaire.
    let bundle = questionnaire(
        &server,
        "/fhir/Questionnaire?url=urn:treatment-protocol:questionnaire:base",
    )
    .await;
    assert_eq!(bundle["total"], 1, "{bundle}");
    validate(&python, "bundle", &[&bundle]).unwrap_or_else(|r| panic!("{r}"));
    let mut broken = bundle.clone();
    broken["total"] = json!(2);
    assert!(
        validate(&python, "bundle", &[&broken]).is_err(),
        "a wrong total is refused"
    );
    // The validator is not blind: a statement without its required `kind` is refused.
    let mut broken = capabilities.clone();
    broken.as_object_mut().map(|o| o.remove("kind"));
    assert!(validate(&python, "capability", &[&broken]).is_err());

    // Responses the validator accepts: a healthy client, every date answered, every gate "never".
    let mut dated = healthy_facts();
    let mut never = healthy_facts();
    for item in q["item"].as_array().expect("items") {
        if let Some(fact) = item["linkId"]
            .as_str()
            .and_then(|l| l.strip_suffix(".null_means"))
        {
            dated[fact] = json!("2025-01-15");
            never[fact] = Value::Null;
        }
    }
    for facts in [healthy_facts(), dated, never] {
        let qr = response_to(&q, &facts);
        validate(&python, "response", &[&q, &qr]).unwrap_or_else(|r| panic!("{r}\n{qr:#}"));
        let decide = |body: Value| {
            let url = server.url("/v1/eligibility");
            async move {
                let res = reqwest::Client::new()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(res.status(), reqwest::StatusCode::OK);
                let mut v: Value = res.json().await.expect("json");
                v.as_object_mut().map(|o| o.remove("decision_id"));
                v
            }
        };
        let by_qr = decide(
            json!({"treatment": "rf_microneedling", "date": "2026-12-01",
            "questionnaire_response": qr, "history": []}),
        )
        .await;
        let by_facts = decide(
            json!({"treatment": "rf_microneedling", "date": "2026-12-01",
            "facts": facts, "history": []}),
        )
        .await;
        assert_eq!(by_qr, by_facts);
    }

    // The validator fails where it should: a duplicate linkId, an enableWhen to nowhere, an item
    // without linkId (the model), a response answering with the wrong type.
    let mut broken = q.clone();
    broken["item"][1]["linkId"] = broken["item"][0]["linkId"].clone();
    let report = validate(&python, "questionnaire", &[&broken]).expect_err("que-2");
    assert!(report.contains("que-2"), "{report}");
    let mut broken = q.clone();
    let gated = broken["item"]
        .as_array_mut()
        .and_then(|a| a.iter_mut().find(|i| i.get("enableWhen").is_some()))
        .expect("a gated item");
    gated["enableWhen"][0]["question"] = json!("nowhere");
    assert!(validate(&python, "questionnaire", &[&broken]).is_err());
    let mut broken = q.clone();
    broken["item"][0]
        .as_object_mut()
        .map(|o| o.remove("linkId"));
    let report = validate(&python, "questionnaire", &[&broken]).expect_err("linkId required");
    assert!(report.contains("fhir.resources"), "{report}");
    let wrong = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "item": [{"linkId": "pregnant", "answer": [{"valueString": "no"}]}]});
    assert!(validate(&python, "response", &[&q, &wrong]).is_err());
}
