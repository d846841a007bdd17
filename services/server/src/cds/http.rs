//! The CDS Hooks endpoints: parse, ask the door, render. Errors are problem+json naming the field
//! (`context.appointments[0].start`, `prefetch.conditions.entry[2].resource.code`), as everywhere
//! in this API; a hook call without the record it needs is 412, as CDS Hooks 2.0 says.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol_engine::FieldViolation;
use serde_json::Value;

use super::fhir::{self, Resource};
use super::question::AppointmentBook;
use super::wire::{Discovery, FeedbackRequest, HookRequest, HookResponse, Outcome};
use super::{HOOK, PREFETCH, REQUIRED_PREFETCH, SERVICE_ID, service};
use crate::http::caller::{Authorized, EligibilityScope};
use crate::http::extract::{JsonBody, is_json, parse_object};
use crate::http::problem::Problem;
use crate::metrics;

/// `GET /cds-services`: open, like `/openapi.json` (CDS clients send a JWT this service does
/// not verify, and the list is no secret).
pub async fn discovery() -> Json<Discovery> {
    Json(Discovery {
        services: vec![service()],
    })
}

fn known(id: &str) -> Result<(), Problem> {
    if id == SERVICE_ID {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "no CDS service '{id}': `GET /cds-services` lists them"
        )))
    }
}

/// 412 Precondition Failed: the record the service needs was not prefetched (and no FHIR server
/// is called).
fn precondition(detail: String) -> Problem {
    let mut p = Problem::custom(
        StatusCode::PRECONDITION_FAILED,
        "prefetch-missing",
        "The patient's record was not prefetched",
        detail,
    );
    p.extensions
        .get_or_insert_default()
        .insert("reason".into(), "PREFETCH_MISSING".into());
    p
}

/// Why a resource is not provably about the hook's patient, by the field at fault: its `subject`
/// (or `patient`) must be a reference to `Patient/<id>` (or the same on the call's FHIR server,
/// written absolute). Another patient, an absolute URL elsewhere, an identifier or a display
/// alone, or no subject at all are refused: a record is never read into another patient's
/// decision on a guess.
fn not_about(
    resource: &Value,
    patient: &str,
    server: Option<&str>,
) -> Option<(&'static str, String)> {
    let ours = |r: &str| {
        r == format!("Patient/{patient}")
            || server.is_some_and(|s| r == format!("{}/Patient/{patient}", s.trim_end_matches('/')))
    };
    for field in ["subject", "patient"] {
        let Some(subject) = resource.get(field) else {
            continue;
        };
        return match subject.get("reference").and_then(Value::as_str) {
            Some(r) if ours(r) => None,
            Some(r) if r.starts_with("Patient/") => Some((
                field,
                format!("this resource is about another patient than `{patient}`"),
            )),
            Some(_) => Some((
                field,
                format!(
                    "the reference is not `Patient/{patient}` (an absolute URL is taken only on the call's fhirServer): this resource is not provably about the hook's patient"
                ),
            )),
            None => Some((
                field,
                format!(
                    "an identifier or a display alone does not say which patient: reference `Patient/{patient}`"
                ),
            )),
        };
    }
    Some((
        "subject",
        format!(
            "no `subject` (or `patient`): this resource is not provably about the hook's patient `{patient}`"
        ),
    ))
}

/// Every resource of one prefetch value that names another patient.
fn check_patient(
    value: &Value,
    at: &str,
    patient: &str,
    server: Option<&str>,
    out: &mut Vec<FieldViolation>,
) {
    let mut one = |r: &Value, at: String| {
        if r.get("resourceType") == Some(&Value::from("Patient")) {
            if let Some(id) = r.get("id").and_then(Value::as_str)
                && id != patient
            {
                out.push(FieldViolation {
                    field: format!("{at}.id"),
                    message: format!("this Patient is not the hook's patient `{patient}`"),
                });
            }
        } else if r.get("resourceType").is_some()
            && r.get("resourceType") != Some(&Value::from("OperationOutcome"))
            && let Some((field, message)) = not_about(r, patient, server)
        {
            out.push(FieldViolation {
                field: format!("{at}.{field}"),
                message,
            });
        }
    };
    match value.get("entry").and_then(Value::as_array) {
        Some(entries) => {
            for (i, e) in entries.iter().enumerate() {
                if let Some(r) = e.get("resource") {
                    one(r, format!("{at}.entry[{i}].resource"));
                }
            }
        }
        None => one(value, at.to_owned()),
    }
}

/// Checks a hook request's own fields and reads its appointments.
fn check(req: &HookRequest) -> Result<Vec<fhir::Booked>, Problem> {
    let mut violations = Vec::new();
    let mut bad = |field: &str, message: String| {
        violations.push(FieldViolation {
            field: field.into(),
            message,
        })
    };
    if req.hook != HOOK {
        bad("hook", format!("this service answers the `{HOOK}` hook"));
    }
    if uuid::Uuid::parse_str(&req.hook_instance).is_err() {
        bad("hookInstance", "a UUID".into());
    }
    let c = &req.context;
    let user_types = [
        "Practitioner/",
        "PractitionerRole/",
        "Patient/",
        "RelatedPerson/",
    ];
    if !user_types
        .iter()
        .any(|t| c.user_id.strip_prefix(t).is_some_and(|id| !id.is_empty()))
    {
        bad(
            "context.userId",
            "a reference: `Practitioner/…`, `PractitionerRole/…`, `Patient/…` or `RelatedPerson/…`"
                .into(),
        );
    }
    if c.patient_id.trim().is_empty() {
        bad("context.patientId", "the patient's FHIR id".into());
    }
    if let Some(server) = &req.fhir_server
        && !(server.starts_with("https://") || server.starts_with("http://"))
    {
        bad("fhirServer", "an http(s) URL".into());
    }
    let appointments = match fhir::appointments(&c.appointments) {
        Ok(a) => match crate::app::check_count(
            "context.appointments",
            a.len(),
            "appointments per call (as in a batch)",
        ) {
            Ok(()) => a,
            Err(crate::app::AppError::Invalid(e)) => {
                violations.extend(e.violations);
                Vec::new()
            }
            Err(other) => return Err(other.into()),
        },
        Err(v) => {
            violations.push(v);
            Vec::new()
        }
    };
    if violations.is_empty() {
        Ok(appointments)
    } else {
        Err(Problem::invalid(violations))
    }
}

/// Why the EHR's FHIR server was not read, for a 412 to say (an EHR that named one expects it
/// to be used).
enum NotCalled {
    /// The call named no `fhirServer`.
    NotNamed,
    /// It named one, and this service may call none (`PROTOCOL_CDS_FHIR_SERVERS` is empty).
    NoneAllowed(String),
    /// It named one this service may not call.
    NotAllowed(String),
}

impl NotCalled {
    fn say(&self) -> String {
        match self {
            NotCalled::NotNamed => "the call names no `fhirServer` to read it from".into(),
            NotCalled::NoneAllowed(base) => format!(
                "the EHR's FHIR server ({base}) was not called: this service calls none \
                 (the operator lists the servers it may call in PROTOCOL_CDS_FHIR_SERVERS)"
            ),
            NotCalled::NotAllowed(base) => format!(
                "the EHR's FHIR server ({base}) was not called: it is not one this service may \
                 call (PROTOCOL_CDS_FHIR_SERVERS)"
            ),
        }
    }
}

/// Completes the prefetch from the request's FHIR server when this service may call it
/// ([`super::fetch`]); what could not be read is noted for the card. Answers why the server was
/// not called, when it was not.
async fn complete(
    cds: &super::CdsState,
    req: &mut HookRequest,
    notes: &mut Vec<String>,
    clinic: Option<&str>,
) -> Option<NotCalled> {
    let Some(base) = req.fhir_server.clone() else {
        return Some(NotCalled::NotNamed);
    };
    let Some(fetch) = cds.fhir.as_deref() else {
        return Some(NotCalled::NoneAllowed(base.chars().take(200).collect()));
    };
    let base = &base;
    let have = req.prefetch.get_or_insert_default();
    let missing: Vec<&str> = PREFETCH
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !have.contains_key(*k))
        .collect();
    if missing.is_empty() {
        return None;
    }
    if !fetch.allows(base, clinic) {
        notes.push(
            "The EHR's FHIR server is not one this service may call: answered from the prefetch \
             alone."
                .into(),
        );
        return Some(NotCalled::NotAllowed(base.chars().take(200).collect()));
    }
    let token = req
        .fhir_authorization
        .as_ref()
        .map(|a| a.access_token.as_str());
    let patient = req.context.patient_id.as_str();
    let fetches = missing.iter().map(|key| {
        let template = PREFETCH
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, t)| *t);
        fetch.fetch(base, token, super::fetch::render(template, patient))
    });
    let results = futures::future::join_all(fetches).await;
    for (key, result) in missing.into_iter().zip(results) {
        match result {
            Ok(value) => {
                have.insert(key.to_owned(), value);
            }
            Err(why) => {
                tracing::warn!(cds.prefetch = key, reason = %why, "FHIR server read failed");
                notes.push(format!(
                    "`{key}` could not be read from the EHR's FHIR server ({why})."
                ));
            }
        }
    }
    None
}

/// Whether a search Bundle has more pages than the one sent.
fn paged(value: &Value) -> bool {
    value
        .get("link")
        .and_then(Value::as_array)
        .is_some_and(|links| {
            links
                .iter()
                .any(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
        })
}

/// Reads the prefetch into the question, or the problem naming what is wrong.
fn read(
    req: HookRequest,
    appointments: Vec<fhir::Booked>,
    mut notes: Vec<String>,
    indexes: std::sync::Arc<crate::catalog::PerRuleSet<super::codes::CodeIndex>>,
    not_called: Option<NotCalled>,
    bookable_cards: bool,
) -> Result<AppointmentBook, Problem> {
    let why_not_read = not_called
        .map(|n| format!("; {}", n.say()))
        .unwrap_or_default();
    let c = &req.context;
    let Some(prefetch) = req.prefetch else {
        return Err(precondition(format!(
            "no `prefetch`: the EHR must send the prefetch its discovery lists (at least `{}`), \
             or name a FHIR server this service may call{why_not_read}",
            REQUIRED_PREFETCH.join("`, `")
        )));
    };
    let mut resources: Vec<Resource> = Vec::new();
    let mut missing_required = Vec::new();
    let mut violations = Vec::new();
    for (key, _) in PREFETCH {
        let at = format!("prefetch.{key}");
        let required = REQUIRED_PREFETCH.contains(key);
        let Some(value) = prefetch.get(*key) else {
            if required {
                missing_required.push(*key);
            } else {
                notes.push(format!(
                    "Prefetch `{key}` was not provided: the facts it would answer stay unknown."
                ));
            }
            continue;
        };
        check_patient(
            value,
            &at,
            &c.patient_id,
            req.fhir_server.as_deref(),
            &mut violations,
        );
        if paged(value) {
            if required {
                missing_required.push(*key);
                continue;
            }
            notes.push(format!(
                "Prefetch `{key}` holds only the first page of its search: what the other pages \
                 hold is unknown."
            ));
        }
        match fhir::prefetched(value, &at) {
            Ok(rs) => resources.extend(rs),
            Err(Some(v)) => violations.push(v),
            Err(None) if required => missing_required.push(*key),
            Err(None) => notes.push(format!(
                "The EHR could not fetch `{key}` (an OperationOutcome): the facts it would \
                 answer stay unknown."
            )),
        }
    }
    if !violations.is_empty() {
        return Err(Problem::invalid(violations));
    }
    if !missing_required.is_empty() {
        return Err(precondition(format!(
            "prefetch `{}` is needed whole (a null value says there is none; a search with more \
             pages is not whole): procedure history is never assumed empty{why_not_read}",
            missing_required.join("`, `")
        )));
    }
    Ok(AppointmentBook {
        appointments,
        resources,
        notes,
        indexes,
        bookable_cards,
    })
}

/// The most bytes of a hook call: a patient's whole record travels in its prefetch, so calls are
/// allowed more than the API's 256 KiB.
pub const MAX_CALL_BYTES: usize = 4 * 1024 * 1024;

/// A hook call's JSON body, up to [`MAX_CALL_BYTES`] (the route's body limit).
pub struct CallBody(HookRequest);

impl<S: Send + Sync> axum::extract::FromRequest<S> for CallBody {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                crate::http::extract::unreadable_body(
                    &rejection,
                    Problem::payload_too_large(MAX_CALL_BYTES),
                )
            })?;
        parse_object(&bytes).map(CallBody)
    }
}

/// `POST /cds-services/{id}`: the hook call.
pub async fn call(
    State(state): State<crate::http::HttpState>,
    Authorized(caller, _): Authorized<EligibilityScope>,
    Path(id): Path<String>,
    CallBody(mut req): CallBody,
) -> Result<Json<HookResponse>, Problem> {
    known(&id)?;
    let appointments = check(&req)?;
    let mut notes = Vec::new();
    let not_called = complete(&state.cds, &mut req, &mut notes, caller.tenant.as_deref()).await;
    let question = read(
        req,
        appointments,
        notes,
        state.cds.indexes.clone(),
        not_called,
        state.cds.bookable_cards,
    )?;
    let outcomes = state.app.ask(&caller, &question).await?;
    let extension = super::cards::appointments_extension(&question.appointments, &outcomes);
    Ok(Json(HookResponse {
        cards: outcomes
            .into_iter()
            .filter_map(|o| match o {
                super::question::Outcome::Checked(c) => c.card,
                _ => None,
            })
            .collect(),
        extension,
    }))
}

/// `POST /cds-services/{id}/feedback`: validated, counted by outcome
/// (`protocol.cds.feedback`), logged with the card (the decision id) and no patient data.
/// Idempotent: the same feedback sent twice is counted twice and changes nothing else.
pub async fn feedback(
    Authorized(caller, _): Authorized<EligibilityScope>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<FeedbackRequest>,
) -> Result<Response, Problem> {
    known(&id)?;
    let mut violations = Vec::new();
    if req.feedback.is_empty() {
        violations.push(FieldViolation {
            field: "feedback".into(),
            message: "at least one feedback item".into(),
        });
    }
    for (i, f) in req.feedback.iter().enumerate() {
        let mut bad = |field: &str, message: &str| {
            violations.push(FieldViolation {
                field: format!("feedback[{i}].{field}"),
                message: message.into(),
            })
        };
        if uuid::Uuid::parse_str(&f.card).is_err() {
            bad("card", "the card's `uuid`");
        }
        if f.outcome == Outcome::Accepted
            && f.accepted_suggestions.as_ref().is_none_or(Vec::is_empty)
        {
            bad(
                "acceptedSuggestions",
                "an accepted card names the suggestions accepted",
            );
        }
        for (j, s) in f.accepted_suggestions.iter().flatten().enumerate() {
            if uuid::Uuid::parse_str(&s.id).is_err() {
                violations.push(FieldViolation {
                    field: format!("feedback[{i}].acceptedSuggestions[{j}].id"),
                    message: "a suggestion's `uuid`".into(),
                });
            }
        }
        if !f.outcome_timestamp.ends_with('Z')
            || f.outcome_timestamp.parse::<jiff::Timestamp>().is_err()
        {
            violations.push(FieldViolation {
                field: format!("feedback[{i}].outcomeTimestamp"),
                message: "an RFC 3339 timestamp in UTC (`2026-12-01T09:00:00Z`)".into(),
            });
        }
    }
    if !violations.is_empty() {
        return Err(Problem::invalid(violations));
    }
    for f in &req.feedback {
        if let Some(m) = metrics::get() {
            m.cds_feedback(SERVICE_ID, f.outcome.as_str());
        }
        tracing::info!(
            cds.service = SERVICE_ID,
            cds.card = f.card.as_str(),
            cds.outcome = f.outcome.as_str(),
            key_id = caller.key_id.as_deref().unwrap_or(""),
            "CDS feedback"
        );
    }
    Ok(StatusCode::OK.into_response())
}
