//! Errors on the FHIR base (`/fhir/...`) as FHIR expects them: an `OperationOutcome`
//! (`application/fhir+json`), not problem+json. FHIR clients read an error's issues, not RFC 9457.
//!
//! The outcome is made from the problem the door's error table gave (one table, two renderings):
//! the same HTTP status and headers; one issue with `severity: error`, the FHIR issue type of the
//! status, `details.coding` holding the problem's stable `reason`
//! (`urn:treatment-protocol:reason`) and its title, `diagnostics` its detail; then one issue per
//! field at fault, its path in `expression`. The problem's `instance` (the request's id) is the
//! outcome's extension `urn:treatment-protocol:instance`.

use axum::body::{Body, to_bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::fhir::FHIR_JSON;
use super::problem::PROBLEM_JSON;

/// The system of the codings that carry a problem's `reason`.
pub const REASON_SYSTEM: &str = "urn:treatment-protocol:reason";
/// The extension that carries a problem's `instance`.
pub const INSTANCE_EXTENSION: &str = "urn:treatment-protocol:instance";

/// A problem+json answer as an OperationOutcome; any other answer as it is. For
/// `axum::middleware::map_response` on the FHIR routes.
pub async fn as_operation_outcome(res: Response) -> Response {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !is_problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // A problem is a small body made in memory; one that cannot be read is answered as it was.
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(problem) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let outcome = operation_outcome(parts.status, &problem);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&outcome).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

/// The OperationOutcome of a problem answered with `status`.
pub fn operation_outcome(status: StatusCode, problem: &Value) -> Value {
    let text = |key: &str| problem[key].as_str().unwrap_or_default().to_owned();
    let code = issue_type(status);
    let mut first = json!({
        "severity": "error",
        "code": code,
        "details": {
            "coding": [{"system": REASON_SYSTEM, "code": text("reason"), "display": text("title")}],
            "text": text("title"),
        },
    });
    if let Some(detail) = problem["detail"].as_str() {
        first["diagnostics"] = json!(detail);
    }
    let mut issues = vec![first];
    for error in problem["errors"].as_array().into_iter().flatten() {
        issues.push(json!({
            "severity": "error",
            "code": code,
            "diagnostics": error["message"],
            "expression": [error["field"]],
        }));
    }
    let mut outcome = json!({"resourceType": "OperationOutcome", "issue": issues});
    if let Some(instance) = problem["instance"].as_str() {
        outcome["extension"] = json!([{"url": INSTANCE_EXTENSION, "valueString": instance}]);
    }
    outcome
}

/// FHIR R4's issue type (`IssueType`) for an HTTP status.
fn issue_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 406 | 415 => "not-supported",
        409 | 412 | 428 => "conflict",
        410 => "deleted",
        413 => "too-long",
        422 => "processing",
        429 => "throttled",
        503 => "transient",
        504 => "timeout",
        _ => "exception",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_becomes_one_issue_and_one_per_field() {
        let problem = json!({
            "type": "urn:treatment-protocol:problem:invalid-request", "title": "Invalid request",
            "status": 400, "detail": "1 field is invalid", "reason": "INVALID_REQUEST",
            "instance": "urn:treatment-protocol:request:abc",
            "errors": [{"field": "clinic", "message": "unknown field"}],
        });
        let o = operation_outcome(StatusCode::BAD_REQUEST, &problem);
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["code"], "invalid");
        assert_eq!(
            o["issue"][0]["details"]["coding"][0]["code"],
            "INVALID_REQUEST"
        );
        assert_eq!(o["issue"][0]["diagnostics"], "1 field is invalid");
        assert_eq!(o["issue"][1]["expression"][0], "clinic");
        assert_eq!(
            o["extension"][0]["valueString"],
            "urn:treatment-protocol:request:abc"
        );
        assert_eq!(issue_type(StatusCode::NOT_FOUND), "not-found");
        assert_eq!(issue_type(StatusCode::IM_A_TEAPOT), "exception");
    }
}

/// An error on the FHIR base, as sent: what the OpenAPI document declares.
#[derive(utoipa::ToSchema)]
#[schema(as = OperationOutcome, title = "OperationOutcome")]
#[expect(dead_code, reason = "only its OpenAPI schema is used, never a value")]
pub struct OperationOutcomeSchema {
    /// Always `OperationOutcome`.
    #[schema(rename = "resourceType")]
    resource_type: String,
    /// The error first (its reason in `details.coding`), then one issue per field at fault.
    issue: Vec<IssueSchema>,
    /// `urn:treatment-protocol:instance`: this occurrence, the id the answer's `x-request-id`
    /// carries.
    extension: Option<Vec<ExtensionSchema>>,
}

/// One issue of an [`OperationOutcomeSchema`].
#[derive(utoipa::ToSchema)]
#[schema(as = OperationOutcomeIssue)]
#[expect(dead_code, reason = "only its OpenAPI schema is used, never a value")]
struct IssueSchema {
    /// `error`.
    severity: String,
    /// FHIR's issue type of the HTTP status (`invalid`, `login`, `forbidden`, `not-found`, ...).
    code: String,
    /// The stable reason (`coding[0].code`, system `urn:treatment-protocol:reason`) and title.
    details: Option<serde_json::Value>,
    /// What is wrong, in words.
    diagnostics: Option<String>,
    /// The field at fault, by path into the request.
    expression: Option<Vec<String>>,
}

/// An extension of an [`OperationOutcomeSchema`].
#[derive(utoipa::ToSchema)]
#[schema(as = OperationOutcomeExtension)]
#[expect(dead_code, reason = "only its OpenAPI schema is used, never a value")]
struct ExtensionSchema {
    url: String,
    #[schema(rename = "valueString")]
    value_string: String,
}
