//! `GET /fhir/Questionnaire/{ruleset}`: the intake questions of the caller's rule set as a FHIR
//! R4 Questionnaire (`application/fhir+json`), for EHRs and intake apps that render forms from
//! FHIR. Parse, ask the door ([`App::questionnaire`]), render: the engine builds the resource.
//! Errors are FHIR `OperationOutcome`s (`application/fhir+json`, made from the problem the door's
//! error table gives: [`super::fhir_outcome`]), as FHIR clients expect.
//!
//! `GET /fhir/metadata`: the FHIR CapabilityStatement of this FHIR base (`/fhir`), what a FHIR
//! client reads first to learn what the server offers; open, as FHIR clients expect.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::caller::{Authorized, EligibilityScope};
use super::extract::StrictQuery;
use super::fhir_outcome::OperationOutcomeSchema;
use super::problem::Problem;
use super::validators::conditional;
use crate::app::{App, catalogue_etag};

/// The media type of FHIR's JSON format.
pub const FHIR_JSON: &str = "application/fhir+json";

/// The query of a Questionnaire read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuestionnaireQuery {
    /// The clinic whose overlay's questions are wanted. A clinic key may name only its own
    /// clinic (it is served its own without this parameter too); naming another needs the
    /// `platform` scope.
    pub clinic: Option<String>,
    /// The format: JSON only (`json`, `application/json`, `application/fhir+json`); any other
    /// (XML, Turtle) is refused naming `_format`.
    #[serde(rename = "_format")]
    #[param(rename = "_format")]
    pub format: Option<String>,
    /// `true`: the resource indented for reading.
    #[serde(rename = "_pretty")]
    #[param(rename = "_pretty")]
    pub pretty: Option<bool>,
}

/// FHIR's general parameters of a read: the format asked for and pretty printing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FhirFormat {
    /// The format: JSON only (`json`, `application/json`, `application/fhir+json`); any other
    /// (XML, Turtle) is refused naming `_format`.
    #[serde(rename = "_format")]
    #[param(rename = "_format")]
    pub format: Option<String>,
    /// `true`: the resource indented for reading.
    #[serde(rename = "_pretty")]
    #[param(rename = "_pretty")]
    pub pretty: Option<bool>,
}

impl FhirFormat {
    /// The resource as JSON, as asked: refused naming `_format` when another format is asked.
    fn render(&self, resource: &impl serde::Serialize) -> Result<Vec<u8>, Problem> {
        if let Some(format) = &self.format
            && !matches!(
                format.as_str(),
                "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
            )
        {
            return Err(Problem::field(
                "_format",
                format!(
                    "'{}' is not served: this FHIR base speaks JSON only (json, application/fhir+json)",
                    format.chars().take(64).collect::<String>()
                ),
            ));
        }
        let body = if self.pretty == Some(true) {
            serde_json::to_vec_pretty(resource)
        } else {
            serde_json::to_vec(resource)
        };
        body.map_err(|_| Problem::internal())
    }
}

/// The intake questions as a FHIR R4 Questionnaire.
///
/// One item per fact of the caller's rule set: `linkId` is the fact id, `type` follows the
/// fact's type (`boolean`; `integer` with the core `minValue`/`maxValue` extensions; `choice`
/// with one `answerOption.valueCoding` per value; `date`), `code` carries the fact's standard
/// codes (SNOMED CT, LOINC, RxNorm, ATC, ICD-10), `text` the question. A date fact that accepts
/// "never" is preceded by a boolean gate `<fact>.null_means`, which enables the date item when
/// answered `false`. `useContext` (`focus`) lists the treatments the questions serve. Send the
/// answers back as `questionnaire_response` on `POST /v1/eligibility` or
/// `/v1/contraindications:check`. `{ruleset}` is the id of the rule set that answers the
/// caller's clinic (its overlay, or `base` without one): a read answers the resource with the id
/// asked or refuses it (`404` naming the id to read).
#[utoipa::path(
    get,
    path = "/fhir/Questionnaire/{ruleset}",
    tag = "fhir",
    params(
        ("ruleset" = String, Path, description = "The rule-set id (`base`, or the clinic's overlay id)", example = "base"),
        QuestionnaireQuery,
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: `304` while it still holds"),
    ),
    responses(
        (status = 200, description = "The Questionnaire", body = protocol_engine::fhir::Questionnaire, content_type = "application/fhir+json",
            headers(
                ("ETag" = String, description = "Strong validator: the rule set's digest and the resource"),
                ("Cache-Control" = String, description = "`private, no-cache`: revalidate with `If-None-Match`"),
            )),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 400, description = "A parameter is invalid", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 401, description = "No or unknown API key", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 403, description = "The key lacks the `eligibility` scope, or names another clinic", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 404, description = "Not the rule set that answers this caller's clinic (the diagnostics name it)", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_questionnaire(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    headers: HeaderMap,
    ruleset: Result<Path<String>, PathRejection>,
    StrictQuery(query): StrictQuery<QuestionnaireQuery>,
) -> Result<Response, Problem> {
    let Path(id) = ruleset.map_err(|e| Problem::field("ruleset", e.body_text()))?;
    let (questionnaire, meta) = app.questionnaire(&caller, Some(id), query.clinic).await?;
    let format = FhirFormat {
        format: query.format,
        pretty: query.pretty,
    };
    let body = format.render(&questionnaire)?;
    let fhir_json = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body,
    );
    let tag = catalogue_etag(&meta, "fhir/Questionnaire");
    Ok(conditional(&headers, &tag, fhir_json.into_response()))
}

/// The query of a Questionnaire search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuestionnaireSearch {
    /// The canonical URL of the Questionnaire wanted (`urn:treatment-protocol:questionnaire:<rule
    /// set id>`, its `url`): what SDC form fillers search by. Without it, the caller's one.
    pub url: Option<String>,
    /// As on the read.
    pub clinic: Option<String>,
    /// As on the read.
    #[serde(rename = "_format")]
    #[param(rename = "_format")]
    pub format: Option<String>,
    /// As on the read.
    #[serde(rename = "_pretty")]
    #[param(rename = "_pretty")]
    pub pretty: Option<bool>,
}

/// Searches the Questionnaires this caller may read, by canonical `url`.
///
/// A FHIR `searchset` Bundle: the Questionnaire of the rule set that answers the caller's clinic
/// when its `url` is the one asked (or none was), else no entry (`total: 0`). SDC form fillers
/// find a form by its canonical URL this way.
#[utoipa::path(
    get,
    path = "/fhir/Questionnaire",
    tag = "fhir",
    params(QuestionnaireSearch),
    responses(
        (status = 200, description = "A searchset Bundle", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "A parameter is invalid", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 401, description = "No or unknown API key", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 403, description = "The key lacks the `eligibility` scope, or names another clinic", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
        (status = 503, description = "No rule set may answer this clinic (`ruleset-unavailable`)", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
    ),
    security(("api_key" = []))
)]
pub async fn search_questionnaires(
    State(app): State<App>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    StrictQuery(query): StrictQuery<QuestionnaireSearch>,
) -> Result<Response, Problem> {
    let (questionnaire, _) = app.questionnaire(&caller, None, query.clinic).await?;
    let matches = query
        .url
        .as_deref()
        .is_none_or(|url| url == questionnaire.url);
    let entries: Vec<serde_json::Value> = if matches {
        vec![serde_json::json!({
            "fullUrl": format!("Questionnaire/{}", questionnaire.id),
            "resource": questionnaire,
            "search": {"mode": "match"},
        })]
    } else {
        Vec::new()
    };
    let bundle = serde_json::json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    });
    let format = FhirFormat {
        format: query.format,
        pretty: query.pretty,
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        format.render(&bundle)?,
    )
        .into_response())
}

/// The CapabilityStatement's publication date: the release that last changed what `/fhir` offers.
const CAPABILITIES_DATE: &str = "2026-12-07";

/// The CapabilityStatement, serialised once.
fn capability_statement() -> &'static [u8] {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        let statement = serde_json::json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": CAPABILITIES_DATE,
            "kind": "instance",
            "software": {"name": "treatment-protocol", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {
                "description": "Treatment-protocol service: the intake questions of a clinic's \
                                rule set as a Questionnaire; answers are sent back as a \
                                QuestionnaireResponse on POST /v1/eligibility"
            },
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON],
            "rest": [{
                "mode": "server",
                "documentation": "Reads need an API key with the `eligibility` scope \
                                  (`Authorization: Bearer <key>`); a clinic key is served its \
                                  own clinic's rule set.",
                "resource": [{
                    "type": "Questionnaire",
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [{"name": "url", "type": "uri"}]
                }]
            }]
        });
        serde_json::to_vec(&statement).unwrap_or_default()
    })
}

/// What this FHIR base offers, as a FHIR R4 CapabilityStatement.
///
/// FHIR clients read `[base]/metadata` first; here the base is `/fhir` and it offers the
/// Questionnaire read. Open: the statement names no clinic and no rule set.
#[utoipa::path(
    get,
    path = "/fhir/metadata",
    tag = "fhir",
    params(FhirFormat),
    responses(
        (status = 200, description = "The CapabilityStatement", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "An unknown parameter, or a `_format` other than JSON", body = OperationOutcomeSchema, content_type = "application/fhir+json"),
    ),
    security(())
)]
pub async fn get_metadata(
    StrictQuery(format): StrictQuery<FhirFormat>,
) -> Result<Response, Problem> {
    let body = match (&format.format, format.pretty) {
        // The common read: the statement serialised once.
        (None, None | Some(false)) => capability_statement().to_vec(),
        _ => {
            let statement: serde_json::Value =
                serde_json::from_slice(capability_statement()).map_err(|_| Problem::internal())?;
            format.render(&statement)?
        }
    };
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        body,
    )
        .into_response())
}
