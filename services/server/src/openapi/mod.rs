//! The OpenAPI 3.1 document, served at `GET /openapi.json`. Its skeleton is derived (utoipa) from
//! the very types the handlers parse and return — the engine's request/response types with its
//! `openapi` feature — so it cannot drift from what the server does. The one thing the types
//! cannot say is what `facts` holds: that is the rule set's, so [`document`] patches in a `Facts`
//! schema generated from the rule set that answers the caller ([`facts`]), and [`Cache`] keeps one
//! rendered document per rule-set version.

mod examples;
pub mod facts;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use protocol_engine::RuleSet;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::catalog::PerRuleSet;
use crate::http;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Treatment-protocol service",
        description = "Eligibility, contraindications, needle depth limits and treatment plans for \
aesthetic clinics. Every answer names the rule set (id, version, digest) it came from. Errors are \
`application/problem+json` (RFC 9457) naming each field at fault in `errors`. Authenticate with \
`Authorization: Bearer <API key>`; the key's clinic selects the rule set and its scopes the \
operations (eligibility, devices, plans, admin). Rule-set versions are published, activated and \
rolled back under `/v1/rulesets` (scope `admin`, Redis required).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        contact(name = "Treatment-protocol service team")
    ),
    servers((url = "/", description = "The server that served this document")),
    paths(
        http::eligibility::check_eligibility,
        http::eligibility::check_eligibility_batch,
        http::eligibility::check_eligibility_calendar,
        http::eligibility::check_contraindications,
        http::depth::depth_limits_get,
        http::depth::depth_limits_post,
        http::plans::build_plan,
        http::catalog::list_treatments,
        http::catalog::get_treatment,
        http::decisions::get_decision,
        http::decisions::replay_decision,
        http::catalog::list_facts,
        http::catalog::get_catalogue,
        http::fhir::get_questionnaire,
        http::fhir::search_questionnaires,
        http::fhir::get_metadata,
        http::notices::watch_rulesets,
        http::rulesets::publish_ruleset,
        http::rulesets::list_rulesets,
        http::rulesets::list_ruleset_versions,
        http::rulesets::get_ruleset_version,
        http::rulesets::activate_ruleset,
        http::rulesets::rollback_ruleset,
        http::rulesets::ruleset_history,
        http::rulesets::retire_ruleset_version,
        http::health::healthz,
        http::health::readyz,
        http::contract::openapi_json,
    ),
    components(schemas(protocol_engine::FieldViolation)),
    modifiers(&BearerAuth),
    tags(
        (name = "eligibility", description = "May this client be treated? (scope `eligibility`)"),
        (name = "devices", description = "Needle depth limits for treatment devices (scope `devices`)"),
        (name = "plans", description = "Courses of treatment (scope `plans`)"),
        (name = "catalogue", description = "Treatments, intake questions, zones, procedures, indications, roles and devices (scope `eligibility`)"),
        (name = "fhir", description = "HL7 FHIR R4 for EHR integrators: the intake questions as a Questionnaire (scope `eligibility`); answers come back as `questionnaire_response` on eligibility and contraindication checks"),
        (name = "notices", description = "Which rule set answers for the caller's clinic, as Server-Sent Events: re-check future appointments when it changes (scope `eligibility`)"),
        (name = "rulesets", description = "Publish, list, activate and roll back rule-set versions (scope `admin`; needs Redis)"),
        (name = "audit", description = "The decision log of the caller's clinic (scope `audit`; needs `PROTOCOL_DECISION_LOG_URL`)"),
        (name = "probes", description = "Liveness and readiness (no key needed)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key issued to a clinic"))
                    .build(),
            ),
        );
    }
}

/// The skeleton: the static document utoipa derives, before any rule set's facts are patched
/// in. Built once.
pub fn skeleton() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        examples::attach(&mut doc);
        admission_responses(&mut doc);
        sse_events(&mut doc);
        doc
    })
}

/// What one Server-Sent Event of `GET /v1/rulesets:watch` is, as tools that read event streams
/// validate it (schemathesis; OpenAPI 3.2's `itemSchema` convention): an object with the
/// event's `event` name, its `id` (a `ruleset` event's is the notice's revision) and its `data`,
/// a JSON text whose content is a `RuleSetNotice` (`contentMediaType`/`contentSchema`). Declaring
/// the notice itself as the stream's schema said that each event *is* a notice, which no event
/// is.
fn sse_events(doc: &mut Value) {
    let event = json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "enum": ["ruleset", "heartbeat"]},
            "id": {"type": "string", "description": "A `ruleset` event's id: the notice's `revision` (what `Last-Event-ID` sends back)"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": "#/components/schemas/RuleSetNotice"},
            },
            "retry": {"type": "integer", "minimum": 0},
        },
    });
    if let Some(media) =
        doc.pointer_mut("/paths/~1v1~1rulesets:watch/get/responses/200/content/text~1event-stream")
    {
        media["schema"] = event;
    }
}

/// The answers the edge may give to any `/v1` operation, whatever its handler: `429` past the
/// per-key rate limit (when one is configured) and `503` when the server sheds load or the
/// request times out. Added here once rather than repeated on every handler.
fn admission_responses(doc: &mut Value) {
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let retry_after = json!({"Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "integer"}
    }});
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (_, item) in paths.iter_mut().filter(|(p, _)| p.starts_with("/v1/")) {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for responses in item
            .values_mut()
            .filter_map(|op| op.get_mut("responses"))
            .filter_map(Value::as_object_mut)
        {
            let quota =
                "The key's rate limit is spent (`quota-exceeded`; only with `PROTOCOL_RATE_LIMIT`)";
            match responses.get_mut("429") {
                Some(r) => {
                    let d = r["description"].as_str().unwrap_or_default();
                    r["description"] = format!("{d}; or: {quota}").into();
                }
                None => {
                    responses.insert(
                        "429".into(),
                        json!({"description": quota, "headers": retry_after, "content": problem}),
                    );
                }
            }
            let shed = "The server is overloaded (`Retry-After: 1`) or the request timed out";
            match responses.get_mut("503") {
                Some(r) => {
                    let d = r["description"].as_str().unwrap_or_default();
                    r["description"] = format!("{d}; or: {shed}").into();
                }
                None => {
                    responses.insert(
                        "503".into(),
                        json!({"description": shed, "headers": retry_after, "content": problem}),
                    );
                }
            }
        }
    }
}

/// The document for one rule set: the skeleton with that rule set's `Facts` schema in
/// `components.schemas` and every request's `facts` property pointing at it. `info` names the
/// rule set (`x-ruleset`), since the types of the facts are that rule set's.
pub fn document(rs: &RuleSet) -> Value {
    let mut doc = skeleton().clone();
    let list = rs.facts();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            if let Some(facts) = schema.pointer_mut("/properties/facts") {
                type_facts(facts);
            }
        }
        schemas.insert("Facts".into(), facts::schema(&list));
        type_ids(schemas, rs);
    }
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert(
            "x-ruleset".into(),
            serde_json::to_value(&list.ruleset).unwrap_or_default(),
        );
    }
    doc
}

/// The ids a request may name, typed from the rule set as the facts are: each kind an enum schema
/// (`TreatmentCode`, `ZoneId`, `DeviceId`, `RoleId`, `IndicationId`, `ProcedureId`) that the
/// request schemas' id properties point at, so a generated client refuses `microneedlng` at
/// compile time. Only requests: an answer names what its own rule set holds.
fn type_ids(schemas: &mut serde_json::Map<String, Value>, rs: &RuleSet) {
    let catalogue = rs.catalogue();
    let named =
        |list: &[protocol_engine::NamedInfo]| list.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    let kinds: [(&str, Vec<String>); 6] = [
        (
            "TreatmentCode",
            rs.treatments()
                .treatments
                .into_iter()
                .map(|t| t.code)
                .collect(),
        ),
        ("ZoneId", named(&catalogue.zones)),
        (
            "DeviceId",
            catalogue.devices.iter().map(|d| d.id.clone()).collect(),
        ),
        (
            "RoleId",
            catalogue.roles.iter().map(|r| r.id.clone()).collect(),
        ),
        ("IndicationId", named(&catalogue.indications)),
        ("ProcedureId", named(&catalogue.procedures)),
    ];
    // Which property of a request names which kind (a single id, or a list of them).
    let properties = [
        ("treatment", "TreatmentCode"),
        ("treatments", "TreatmentCode"),
        ("zone", "ZoneId"),
        ("zones", "ZoneId"),
        ("device", "DeviceId"),
        ("role", "RoleId"),
        ("indication", "IndicationId"),
        ("procedure", "ProcedureId"),
    ];
    for (name, schema) in schemas.iter_mut() {
        let request = name.ends_with("Request") || name == "CalendarSlot" || name == "HistoryEntry";
        if !request {
            continue;
        }
        for (property, kind) in properties {
            if let Some(p) = schema.pointer_mut(&format!("/properties/{property}")) {
                type_id(p, kind);
            }
        }
    }
    for (kind, ids) in kinds {
        schemas.insert(
            kind.into(),
            json!({"type": "string", "enum": ids, "description": format!("An id this rule set declares ({kind})")}),
        );
    }
}

/// Points an id property (`string`, nullable or not, or a list of them) at its enum schema,
/// keeping its description.
fn type_id(property: &mut Value, kind: &str) {
    let reference = json!({"$ref": format!("#/components/schemas/{kind}")});
    let ty = property["type"].clone();
    let has = |t: &str| ty == t || ty.as_array().is_some_and(|a| a.contains(&json!(t)));
    let nullable = has("null");
    if has("array") {
        property["items"] = reference;
        return;
    }
    if !has("string") {
        return;
    }
    let mut typed = if nullable {
        json!({"oneOf": [reference, {"type": "null"}]})
    } else {
        reference
    };
    if let Some(description) = property.get("description") {
        typed["description"] = description.clone();
    }
    *property = typed;
}

/// Points a request's untyped `facts` property (`{"type": "object"}`, or nullable) at the
/// `Facts` schema, keeping its description. A `facts` property of another type (the array of
/// `FactList`) is left alone.
fn type_facts(property: &mut Value) {
    let ty = &property["type"];
    let object = ty == "object";
    let nullable = ty
        .as_array()
        .is_some_and(|t| t.contains(&json!("object")) && t.contains(&json!("null")));
    if !object && !nullable {
        return;
    }
    let reference = json!({"$ref": "#/components/schemas/Facts"});
    let mut typed = if nullable {
        json!({"oneOf": [reference, {"type": "null"}]})
    } else {
        reference
    };
    if let Some(description) = property.get("description") {
        typed["description"] = description.clone();
    }
    *property = typed;
}

/// A served document: its JSON and its strong `ETag`.
#[derive(Debug)]
pub struct Served {
    /// The document, compact JSON.
    pub json: Bytes,
    /// `"<first 128 bits of the SHA-256 of json, hex>"`.
    pub etag: String,
}

impl Served {
    fn of(doc: &Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(doc).unwrap_or_default());
        Self {
            etag: format!("\"{}\"", const_hex::encode(&Sha256::digest(&json)[..16])),
            json,
        }
    }
}

/// The documents built so far: one per rule-set version, not per request.
#[derive(Debug, Default)]
pub struct Cache(PerRuleSet<Served>);

impl Cache {
    /// The document for `rs`, built on first use.
    pub fn get(&self, rs: &RuleSet) -> Arc<Served> {
        self.0.get(rs, |rs| Served::of(&document(rs)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_renders_every_route() {
        let doc: serde_json::Value = super::skeleton().clone();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        for path in [
            "/v1/eligibility",
            "/v1/eligibility:batch",
            "/v1/contraindications:check",
            "/v1/depth-limits",
            "/v1/plans",
            "/v1/treatments",
            "/v1/treatments/{code}",
            "/v1/facts",
            "/fhir/Questionnaire/{ruleset}",
            "/fhir/Questionnaire",
            "/fhir/metadata",
            "/v1/rulesets",
            "/v1/rulesets/{id}/versions",
            "/v1/rulesets/{id}/versions/{version}",
            "/v1/rulesets/{id}/activate",
            "/v1/rulesets/{id}/rollback",
            "/v1/rulesets/{id}/history",
            "/healthz",
            "/readyz",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }

    #[test]
    fn one_document_per_rule_set_built_once() {
        let catalog = crate::catalog::Catalog::bundled().expect("bundled rule sets");
        let base = catalog.for_tenant(None).expect("base");
        let aurora = catalog.for_tenant(Some("clinic-aurora")).expect("aurora");
        let cache = super::Cache::default();
        let first = cache.get(base);
        assert!(
            std::sync::Arc::ptr_eq(&first, &cache.get(base)),
            "built again"
        );
        let other = cache.get(aurora);
        assert_ne!(first.etag, other.etag);
        let doc: serde_json::Value = serde_json::from_slice(&other.json).expect("JSON");
        assert_eq!(doc["info"]["x-ruleset"]["id"], "clinic-aurora");
        assert_eq!(
            doc["components"]["schemas"]["Facts"]["properties"]["pregnant"]["type"],
            "boolean"
        );
        // The skeleton itself stays untyped: each document is patched on a copy.
        assert!(
            super::skeleton()["components"]["schemas"]
                .get("Facts")
                .is_none()
        );
    }
}
