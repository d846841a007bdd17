//! The catalogue (issue 13, item 5): every id a request may name (procedures for `history`,
//! devices with their labelled and evaluated maximum, roles, indications, zones) and the display
//! labels of enum answers, over REST (cacheable, with `ETag` and `304`) and gRPC, from the
//! caller's clinic rule set.

use protocol_tests::{KEY_AURORA, KEY_BASE, Server, pb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::common::*;

fn named_grpc(list: &[pb::NamedItem]) -> Value {
    list.iter()
        .map(|n| {
            let mut v = json!({"id": n.id, "name": n.name});
            if !n.codes.is_empty() {
                v["codes"] = codes_grpc(&n.codes);
            }
            v
        })
        .collect()
}

/// gRPC codings in the REST JSON shape.
fn codes_grpc(codes: &[pb::Coding]) -> Value {
    codes
        .iter()
        .map(|c| json!({"system": c.system, "code": c.code, "display": c.display}))
        .collect()
}

/// The gRPC catalogue in the REST JSON shape (absent depths left out, as REST does).
fn catalogue_grpc(c: &pb::GetCatalogueResponse) -> Value {
    let roles: Vec<Value> = c
        .roles
        .iter()
        .map(|r| {
            let mut v = json!({"id": r.id, "name": r.name});
            if let Some(mm) = r.max_depth_mm {
                v["max_depth_mm"] = json!(mm);
            }
            v
        })
        .collect();
    let devices: Vec<Value> = c
        .devices
        .iter()
        .map(|d| {
            let mut v = json!({"id": d.id, "name": d.name, "treatments": d.treatments});
            if let Some(mm) = d.max_depth_mm {
                v["max_depth_mm"] = json!(mm);
            }
            if let Some(mm) = d.evaluated_max_depth_mm {
                v["evaluated_max_depth_mm"] = json!(mm);
            }
            v
        })
        .collect();
    let r = c.ruleset.as_ref().expect("ruleset");
    json!({
        "zones": named_grpc(&c.zones),
        "procedures": named_grpc(&c.procedures),
        "indications": named_grpc(&c.indications),
        "roles": roles,
        "devices": devices,
        "ruleset": {"id": r.id, "version": r.version, "digest": r.digest},
    })
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id))
        .unwrap_or_else(|| panic!("{id} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_names_every_id_a_request_may_use_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let res = http()
        .get(server.url("/v1/catalogue"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(res.headers()["cache-control"], "private, no-cache");
    let rest: Value = res.json().await.expect("json");

    assert_eq!(
        find(&rest["procedures"], "botulinum_toxin")["name"],
        "Botulinum toxin"
    );
    assert_eq!(
        find(&rest["indications"], "acne_scars")["name"],
        "Atrophic acne scars"
    );
    assert_eq!(find(&rest["zones"], "cheeks")["name"], "Cheeks");
    assert_eq!(find(&rest["roles"], "nurse")["max_depth_mm"], 1.5);
    assert!(
        find(&rest["roles"], "physician")
            .get("max_depth_mm")
            .is_none()
    );
    let skinpen = find(&rest["devices"], "skinpen_precision");
    assert_eq!(skinpen["max_depth_mm"], 2.5);
    assert_eq!(skinpen["evaluated_max_depth_mm"], 1.5);
    assert_eq!(
        skinpen["treatments"],
        json!(["microneedling", "microneedling_prp"])
    );
    assert_eq!(rest["ruleset"]["id"], "base");

    // Every procedure served is accepted in `history[].procedure`.
    let history: Vec<Value> = rest["procedures"]
        .as_array()
        .expect("procedures")
        .iter()
        .map(|p| json!({"procedure": p["id"], "date": "2026-01-05"}))
        .collect();
    assert!(history.len() > 10);
    let res = http()
        .post(server.url("/v1/eligibility"))
        .json(&json!({"treatment": "microneedling", "date": "2026-12-01", "facts": {}, "history": history}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap_or_default()
    );

    // Revalidation: 304 while the rule set is the same.
    let res = http()
        .get(server.url("/v1/catalogue"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"].to_str().expect("etag"), etag);

    let mut client = server.grpc().await.expect("client");
    let grpc = client
        .get_catalogue(pb::GetCatalogueRequest {})
        .await
        .expect("GetCatalogue")
        .into_inner();
    let mut rest_projection = rest.clone();
    rest_projection["ruleset"] = json!({
        "id": rest["ruleset"]["id"], "version": rest["ruleset"]["version"], "digest": rest["ruleset"]["digest"],
    });
    assert_eq!(catalogue_grpc(&grpc), rest_projection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_clinic_gets_its_own_catalogue() {
    let server = Server::start_with_keys().expect("server starts");
    let mut client = server.grpc().await.expect("client");
    let mut etags = Vec::new();
    // Aurora's overlay caps nurses at 1.0 mm and the Dermapen 4 at 2.0 mm; the base does not.
    for (key, ruleset, nurse, dermapen) in [
        (KEY_AURORA, "clinic-aurora", 1.0, 2.0),
        (KEY_BASE, "base", 1.5, 3.0),
    ] {
        let res = http()
            .get(server.url("/v1/catalogue"))
            .bearer_auth(key)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["vary"], "authorization");
        etags.push(res.headers()["etag"].to_str().expect("etag").to_owned());
        let rest: Value = res.json().await.expect("json");
        assert_eq!(rest["ruleset"]["id"], ruleset);
        assert_eq!(
            find(&rest["roles"], "nurse")["max_depth_mm"],
            nurse,
            "{ruleset}"
        );
        assert_eq!(
            find(&rest["devices"], "dermapen_4")["max_depth_mm"],
            dermapen,
            "{ruleset}"
        );

        let grpc = client
            .get_catalogue(with_key(pb::GetCatalogueRequest {}, Some(key)))
            .await
            .expect("GetCatalogue")
            .into_inner();
        assert_eq!(grpc.ruleset.as_ref().map(|r| r.id.as_str()), Some(ruleset));
        let nurse_grpc = grpc.roles.iter().find(|r| r.id == "nurse").expect("nurse");
        assert_eq!(nurse_grpc.max_depth_mm, Some(nurse));
    }
    assert_ne!(etags[0], etags[1], "another clinic never shares an ETag");
    let res = http()
        .get(server.url("/v1/catalogue"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_answers_carry_display_labels_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let rest: Value = http()
        .get(server.url("/v1/facts"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let rosacea = find(&rest["facts"], "rosacea");
    assert_eq!(
        rosacea["labels"]["erythematotelangiectatic"],
        "Erythematotelangiectatic (redness, visible vessels)"
    );
    let values = rosacea["values"].as_array().expect("values");
    assert_eq!(
        rosacea["labels"].as_object().map(|o| o.len()),
        Some(values.len())
    );
    assert!(find(&rest["facts"], "pregnant").get("labels").is_none());

    let mut client = server.grpc().await.expect("client");
    let facts = client
        .list_facts(pb::ListFactsRequest {})
        .await
        .expect("ListFacts")
        .into_inner();
    let rosacea_grpc = facts
        .facts
        .iter()
        .find(|f| f.id == "rosacea")
        .expect("rosacea");
    let labels: serde_json::Map<String, Value> = rosacea_grpc
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    assert_eq!(Value::Object(labels), rosacea["labels"]);
}

/// Issue 15 §1: the standard codes of facts, zones, procedures and treatments are served on both
/// protocols, the same on each; an uncoded item carries no `codes` key at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_served_on_facts_catalogue_and_treatments_on_both_protocols() {
    let server = Server::start().expect("server starts");
    let get = |path: &'static str| {
        let url = server.url(path);
        async move {
            http()
                .get(url)
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let facts = get("/v1/facts").await;
    let pregnant = find(&facts["facts"], "pregnant");
    assert!(
        pregnant["codes"].as_array().expect("codes").contains(
            &json!({"system": "http://loinc.org", "code": "82810-3", "display": "Pregnancy status"})
        ),
        "{pregnant}"
    );
    assert!(find(&facts["facts"], "fitzpatrick").get("codes").is_none());
    let catalogue = get("/v1/catalogue").await;
    assert_eq!(
        find(&catalogue["zones"], "cheeks")["codes"][0]["code"],
        "36141000"
    );
    assert_eq!(
        find(&catalogue["procedures"], "radiotherapy")["codes"][0]["system"],
        "http://snomed.info/sct"
    );
    let treatments = get("/v1/treatments").await;
    let code_of = |t: &Value| t.get("codes").cloned();
    let microneedling = treatments["treatments"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["code"] == "microneedling"))
        .expect("microneedling");
    assert_eq!(
        code_of(microneedling),
        find(&catalogue["procedures"], "microneedling")
            .get("codes")
            .cloned(),
        "a treatment's codes are its procedure's"
    );

    let mut client = server.grpc().await.expect("client");
    let listed = client
        .list_facts(pb::ListFactsRequest {})
        .await
        .expect("ListFacts")
        .into_inner();
    let grpc_pregnant = listed
        .facts
        .iter()
        .find(|f| f.id == "pregnant")
        .expect("pregnant");
    assert_eq!(codes_grpc(&grpc_pregnant.codes), pregnant["codes"]);
}
