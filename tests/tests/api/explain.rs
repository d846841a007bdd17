//! Explain mode over REST and gRPC: `explain: true` returns every rule of the treatment with its
//! condition tree, each node's result and the values it read; both protocols say the same.

use protocol_tests::fixtures::{bearer, healthy_facts};
use protocol_tests::json_pb::eligibility_pb;
use protocol_tests::{KEY_AURORA, ServerBuilder, pb};
use serde_json::{Value, json};

fn request(explain: bool) -> Value {
    let mut facts = healthy_facts();
    facts["pregnant"] = json!(true);
    if let Some(f) = facts.as_object_mut() {
        f.remove("bleeding_disorder");
    }
    let mut req = json!({
        "treatment": "microneedling",
        "date": "2026-12-01",
        "facts": facts,
        "history": [],
    });
    if explain {
        req["explain"] = json!(true);
    }
    req
}

fn rule<'a>(explanation: &'a Value, id: &str) -> &'a Value {
    explanation
        .as_array()
        .and_then(|a| a.iter().find(|r| r["rule"] == id))
        .unwrap_or_else(|| panic!("rule {id} explained: {explanation}"))
}

/// The REST explanation as the gRPC one renders it: (rule, result, test, used).
/// Per rule: its id, result, top test and the values that test read.
type Shape = Vec<(String, String, String, Vec<(String, Option<String>)>)>;

fn rest_shape(explanation: &Value) -> Shape {
    explanation
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let c = &r["condition"];
                    (
                        r["rule"].as_str().unwrap_or_default().to_owned(),
                        r["result"].as_str().unwrap_or_default().to_owned(),
                        c["test"].as_str().unwrap_or_default().to_owned(),
                        c["used"]
                            .as_array()
                            .map(|u| {
                                u.iter()
                                    .map(|u| {
                                        (
                                            u["input"].as_str().unwrap_or_default().to_owned(),
                                            u["value"].as_str().map(str::to_owned),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn grpc_shape(explanation: &[pb::ExplainedRule]) -> Shape {
    explanation
        .iter()
        .map(|r| {
            let c = r.condition.clone().unwrap_or_default();
            let result = match r.result() {
                pb::Truth::True => "true",
                pb::Truth::False => "false",
                pb::Truth::Unknown => "unknown",
                pb::Truth::Unspecified => "unspecified",
            };
            (
                r.rule.clone(),
                result.to_owned(),
                c.test,
                c.used.into_iter().map(|u| (u.input, u.value)).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn explain_shows_the_tree_of_a_fired_and_an_unknown_contraindication_over_both_protocols() {
    let server = ServerBuilder::new().with_keys().spawn().expect("server");
    let http = reqwest::Client::new();
    let res = http
        .post(server.url("/v1/eligibility"))
        .bearer_auth(KEY_AURORA)
        .json(&request(true))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["decision"], "contraindicated");
    let explanation = &body["explanation"];

    let pregnancy = rule(explanation, "pregnancy");
    assert_eq!(pregnancy["result"], "true", "{pregnancy}");
    assert_eq!(pregnancy["effect"], "contraindicate");
    assert_eq!(pregnancy["condition"]["test"], "pregnant = true");
    assert_eq!(pregnancy["condition"]["result"], "true");
    assert_eq!(
        pregnancy["condition"]["used"],
        json!([{"input": "pregnant", "value": "true"}])
    );

    let bleeding = rule(explanation, "bleeding_disorder");
    assert_eq!(bleeding["result"], "unknown", "{bleeding}");
    assert_eq!(bleeding["condition"]["result"], "unknown");
    assert_eq!(
        bleeding["condition"]["used"],
        json!([{"input": "bleeding_disorder"}]),
        "an unanswered fact has no value"
    );

    // Without `explain`, no explanation.
    let res = http
        .post(server.url("/v1/eligibility"))
        .bearer_auth(KEY_AURORA)
        .json(&request(false))
        .send()
        .await
        .expect("answered");
    let plain: Value = res.json().await.expect("json");
    assert!(plain.get("explanation").is_none(), "{plain}");

    // gRPC: the same explanation.
    let mut grpc = server.grpc().await.expect("grpc");
    let answer = grpc
        .check_eligibility(bearer(eligibility_pb(&request(true)), KEY_AURORA))
        .await
        .expect("grpc answered")
        .into_inner();
    assert_eq!(grpc_shape(&answer.explanation), rest_shape(explanation));
    let plain = grpc
        .check_eligibility(bearer(eligibility_pb(&request(false)), KEY_AURORA))
        .await
        .expect("grpc answered")
        .into_inner();
    assert!(plain.explanation.is_empty());
}
