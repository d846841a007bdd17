//! Explain mode over REST and gRPC: `explain: true` returns every rule of the treatment with its
//! condition tree, each node's result and the values it read; both protocols say the same.

use protocol_tests::fixtures::{bearer, healthy_facts};
use protocol_tests::json_pb::{calendar_pb, eligibility_pb};
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

#[tokio::test]
async fn explain_lists_every_cap_of_each_zone_over_both_protocols() {
    let server = ServerBuilder::new().with_keys().spawn().expect("server");
    let http = reqwest::Client::new();
    let req = json!({
        "treatment": "microneedling", "device": "dermapen_4", "role": "nurse",
        "zone": "cheeks", "explain": true,
    });
    let res = http
        .post(server.url("/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .json(&req)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    let zone = &body["zones"][0];
    let limit = zone["max_depth_mm"].as_f64().expect("limit");
    let bounds: Vec<(String, f64)> = zone["bounds"]
        .as_array()
        .expect("bounds with explain")
        .iter()
        .map(|b| {
            (
                b["bound"].as_str().unwrap_or_default().to_owned(),
                b["max_depth_mm"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let kinds: Vec<&str> = bounds.iter().map(|(b, _)| b.as_str()).collect();
    for kind in ["zone", "device", "role"] {
        assert!(kinds.contains(&kind), "{kind} in {bounds:?}");
    }
    // The limit is the smallest cap, and the binding ones are exactly those equal to it.
    let smallest = bounds.iter().map(|(_, c)| *c).fold(f64::INFINITY, f64::min);
    assert_eq!(smallest, limit, "{bounds:?}");
    let binding: Vec<&str> = bounds
        .iter()
        .filter(|(_, c)| *c == limit)
        .map(|(b, _)| b.as_str())
        .collect();
    assert_eq!(json!(binding), zone["bound_by"]);

    // GET takes it as a query parameter; without it, no bounds.
    let res = http
        .get(server.url("/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .query(&[
            ("treatment", "microneedling"),
            ("device", "dermapen_4"),
            ("role", "nurse"),
            ("zone", "cheeks"),
            ("explain", "true"),
        ])
        .send()
        .await
        .expect("answered");
    let get: Value = res.json().await.expect("json");
    assert_eq!(get["zones"][0]["bounds"], zone["bounds"]);
    let mut plain = req.clone();
    plain["explain"] = json!(false);
    let res = http
        .post(server.url("/v1/depth-limits"))
        .bearer_auth(KEY_AURORA)
        .json(&plain)
        .send()
        .await
        .expect("answered");
    let plain: Value = res.json().await.expect("json");
    assert!(plain["zones"][0].get("bounds").is_none(), "{plain}");

    // gRPC: the same caps.
    let mut grpc = server.grpc().await.expect("grpc");
    let answer = grpc
        .get_depth_limits(bearer(protocol_tests::json_pb::depth_pb(&req), KEY_AURORA))
        .await
        .expect("grpc answered")
        .into_inner();
    let grpc_bounds: Vec<(String, f64)> = answer.zones[0]
        .bounds
        .iter()
        .map(|b| (b.bound.clone(), b.max_depth_mm))
        .collect();
    assert_eq!(grpc_bounds, bounds);
}

#[tokio::test]
async fn explain_on_a_contraindication_check_explains_each_treatment_over_both_protocols() {
    let server = ServerBuilder::new().with_keys().spawn().expect("server");
    let mut req = request(true);
    if let Some(r) = req.as_object_mut() {
        r.remove("treatment");
        r.remove("date");
        r.remove("history");
    }
    req["treatments"] = json!(["microneedling"]);
    let res = reqwest::Client::new()
        .post(server.url("/v1/contraindications:check"))
        .bearer_auth(KEY_AURORA)
        .json(&req)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("json");
    let explanation = &body["results"][0]["explanation"];
    assert_eq!(rule(explanation, "pregnancy")["result"], "true", "{body}");
    assert_eq!(rule(explanation, "bleeding_disorder")["result"], "unknown");

    let mut grpc = server.grpc().await.expect("grpc");
    let report = grpc
        .check_contraindications(bearer(
            protocol_tests::json_pb::contraindication_pb(&req),
            KEY_AURORA,
        ))
        .await
        .expect("grpc answered")
        .into_inner();
    assert_eq!(
        grpc_shape(&report.results[0].explanation),
        rest_shape(explanation)
    );
}

/// `explain: true` on a calendar explains each answered slot as a single check explains itself
/// (the same rules, results and values, REST and gRPC); a refused slot has no explanation, and
/// without `explain` no slot has one.
#[tokio::test]
async fn explain_on_a_calendar_explains_each_answered_slot_over_both_protocols() {
    let server = ServerBuilder::new().with_keys().spawn().expect("server");
    let http = reqwest::Client::new();
    let single = request(true);
    let calendar = |explain: bool| {
        json!({
            "facts": single["facts"], "history": [], "explain": explain,
            "slots": [
                {"treatment": "microneedling", "date": "2026-12-01"},
                {"treatment": "microneedling", "date": "2026-02-30"},
            ],
        })
    };
    let post = |path: &'static str, body: Value| {
        let http = http.clone();
        let url = server.url(path);
        async move {
            let res = http
                .post(url)
                .bearer_auth(KEY_AURORA)
                .json(&body)
                .send()
                .await
                .expect("answered");
            assert_eq!(res.status().as_u16(), 200);
            res.json::<Value>().await.expect("json")
        }
    };
    let one = post("/v1/eligibility", single.clone()).await;
    let cal = post("/v1/eligibility:calendar", calendar(true)).await;
    let slot = &cal["results"][0]["eligibility"];
    assert_eq!(slot["decision"], "contraindicated", "{cal}");
    assert_eq!(
        rest_shape(&slot["explanation"]),
        rest_shape(&one["explanation"]),
        "a slot is explained as the single check it stands for"
    );
    assert!(!rest_shape(&slot["explanation"]).is_empty());
    assert!(cal["results"][1]["problem"].is_object(), "{cal}");
    let plain = post("/v1/eligibility:calendar", calendar(false)).await;
    assert!(
        plain["results"][0]["eligibility"]
            .get("explanation")
            .is_none(),
        "{plain}"
    );

    let mut grpc = server.grpc().await.expect("grpc");
    let answer = grpc
        .check_eligibility_calendar(bearer(calendar_pb(&calendar(true)), KEY_AURORA))
        .await
        .expect("grpc answered")
        .into_inner();
    let Some(pb::calendar_slot_result::Result::Eligibility(first)) = &answer.results[0].result
    else {
        panic!("slot 0 answered: {answer:?}");
    };
    assert_eq!(
        grpc_shape(&first.explanation),
        rest_shape(&one["explanation"])
    );
    let plain = grpc
        .check_eligibility_calendar(bearer(calendar_pb(&calendar(false)), KEY_AURORA))
        .await
        .expect("grpc answered")
        .into_inner();
    let Some(pb::calendar_slot_result::Result::Eligibility(first)) = &plain.results[0].result
    else {
        panic!("slot 0 answered");
    };
    assert!(first.explanation.is_empty());
}
