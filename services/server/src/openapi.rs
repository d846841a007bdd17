//! The OpenAPI 3.1 document, served at `GET /openapi.json`. It is derived (utoipa) from the very
//! types the handlers parse and return — the engine's request/response types with its `openapi`
//! feature — so it cannot drift from what the server does.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
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
        http::catalog::list_facts,
        http::catalogue::get_catalogue,
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
    ),
    components(schemas(protocol_engine::FieldViolation)),
    modifiers(&BearerAuth),
    tags(
        (name = "eligibility", description = "May this client be treated? (scope `eligibility`)"),
        (name = "devices", description = "Needle depth limits for treatment devices (scope `devices`)"),
        (name = "plans", description = "Courses of treatment (scope `plans`)"),
        (name = "catalogue", description = "Treatments, intake questions, zones, procedures, indications, roles and devices (scope `eligibility`)"),
        (name = "notices", description = "Which rule set answers for the caller's clinic, as Server-Sent Events: re-check future appointments when it changes (scope `eligibility`)"),
        (name = "rulesets", description = "Publish, list, activate and roll back rule-set versions (scope `admin`; needs Redis)"),
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

/// The document as JSON, rendered once.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_renders_every_route() {
        let doc: serde_json::Value =
            serde_json::from_str(super::document_json()).expect("valid JSON");
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
}
