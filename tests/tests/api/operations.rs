//! Every operation of the door's registry, asked through [`TestApp::ask`] (an exhaustive match on
//! the registry, so an operation added without a way to ask it does not compile): answered for a
//! key with its scope, refused for a key without it (naming the scope) and for no key. The
//! catalogue reads are for any reading scope: a device's key reads the device list.

use protocol_server::app::operations::Operation;
use protocol_tests::{KEY_AURORA, KEY_DEVICE_ONLY, KEY_ELIGIBILITY_ONLY, TestApp};
use serde_json::{Value, json};

use crate::api::common::healthy_facts;

/// A valid input for each operation (exhaustive: a new operation needs one here too).
fn input(op: Operation) -> Value {
    match op {
        Operation::Eligibility => json!({
            "treatment": "microneedling", "date": "2026-12-01", "facts": healthy_facts(),
            "history": [],
        }),
        Operation::Contraindications => json!({
            "date": "2026-12-01", "facts": healthy_facts(), "history": [],
            "treatments": ["microneedling"],
        }),
        Operation::DepthLimits => json!({
            "treatment": "microneedling", "device": "dermapen_4", "role": "nurse",
            "zone": "cheeks",
        }),
        Operation::Plan => json!({
            "indication": "acne_scars", "zones": ["cheeks"], "facts": healthy_facts(),
            "history": [], "start_date": "2026-12-01", "role": "physician",
            "device": "dermapen_4",
        }),
        Operation::GetTreatment => json!("microneedling"),
        Operation::GetQuestionnaire => json!("clinic-aurora"),
        Operation::ListTreatments | Operation::GetCatalogue | Operation::ListFacts => Value::Null,
    }
}

#[tokio::test]
async fn every_operation_of_the_registry_is_answered_and_guarded_by_its_scope() {
    let app = TestApp::start_with_keys();
    for op in Operation::ALL {
        let what = op.name();
        let answer = app.as_key(KEY_AURORA).ask(op, &input(op)).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.body);
        assert!(answer.body.is_object(), "{what}: a JSON answer");

        let anonymous = app.open().ask(op, &input(op)).await;
        assert_eq!(
            anonymous.status, 401,
            "{what} without a key: {}",
            anonymous.body
        );

        // A booking key holds `eligibility` only, a device's key `devices` only; what a rule
        // set declares (the catalogue reads) is for both.
        for (key, holds) in [
            (KEY_ELIGIBILITY_ONLY, "eligibility"),
            (KEY_DEVICE_ONLY, "devices"),
        ] {
            let scope = op.scope().to_string();
            let allowed = scope == holds || scope == "catalogue";
            let limited = app.as_key(key).ask(op, &input(op)).await;
            if allowed {
                assert_eq!(limited.status, 200, "{what} as {holds}: {}", limited.body);
                continue;
            }
            assert_eq!(limited.status, 403, "{what} as {holds}: {}", limited.body);
            let (reason, detail) = refusal(&limited.body);
            assert_eq!(reason, "SCOPE_MISSING", "{what}");
            assert!(
                detail.contains(&scope),
                "{what} names the scope: {}",
                limited.body
            );
        }
    }
}

/// The reason and words of a refusal: a problem+json, or on the FHIR base an OperationOutcome.
fn refusal(body: &Value) -> (&str, &str) {
    fn text(v: &Value) -> &str {
        v.as_str().unwrap_or_default()
    }
    if body["resourceType"] == "OperationOutcome" {
        let issue = &body["issue"][0];
        (
            text(&issue["details"]["coding"][0]["code"]),
            text(&issue["diagnostics"]),
        )
    } else {
        (text(&body["reason"]), text(&body["detail"]))
    }
}
