//! Request extractors that never answer a bad request with a bare string: a JSON body or a query
//! string that does not parse becomes problem+json naming the field at fault (via
//! `serde_path_to_error`), a body that is not JSON is 415, and one above the limit is 413.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use protocol_engine::FieldViolation;
use serde::de::DeserializeOwned;

use super::problem::Problem;
use crate::context::MAX_BODY_BYTES;
use crate::edge::memory::{BodyTooSlow, MemoryBusy};

/// A JSON request body, parsed strictly.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_object(&bytes).map(JsonBody)
    }
}

/// The bytes of a JSON request body, unparsed (for a handler that reads them into a rule set's
/// slots, falling back to [`parse_object`]): the media type checked (415) and the size limit
/// applied (413), as for [`JsonBody`].
pub struct JsonBytes(pub Bytes);

impl<S> FromRequest<S> for JsonBytes
where
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::unsupported_media_type());
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|rejection| {
                unreadable_body(&rejection, Problem::payload_too_large(MAX_BODY_BYTES))
            })
    }
}

/// A JSON request body that may be left out: an empty body is `T::default()` (so `curl -X POST`
/// works without `-d '{}'`); any other body is read as [`JsonBody`] reads it.
pub struct OptionalJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            unreadable_body(&rejection, Problem::payload_too_large(MAX_BODY_BYTES))
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !json {
            return Err(Problem::unsupported_media_type());
        }
        parse_object(&bytes).map(OptionalJsonBody)
    }
}

/// Why a body could not be read: `too_large` past the route's limit; `MEMORY_BUSY` (503) when the
/// request-memory budget could not hold it as it arrived (`crate::edge::memory`); else the
/// transport's reason, naming no field.
pub(crate) fn unreadable_body(rejection: &BytesRejection, too_large: Problem) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if let Some(slow) = e.downcast_ref::<BodyTooSlow>() {
            return Problem::from(crate::app::AppError::BodyTimedOut { secs: slow.secs });
        }
        if let Some(busy) = e.downcast_ref::<MemoryBusy>() {
            return Problem::from(crate::app::AppError::MemoryBusy {
                needed_kib: busy.needed_kib,
                budget_kib: busy.budget_kib,
                retry_after_secs: crate::edge::admission::SHED_RETRY_AFTER_SECS,
            });
        }
        source = e.source();
    }
    Problem::field("", format!("the body could not be read: {rejection}"))
}

/// `application/json`, or any `+json` media type, with optional parameters.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON object body. Every request body of this API is an object; serde would also
/// accept an array for a struct (fields by position), which no client means.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => parse_json(bytes),
        Some(_) => Err(Problem::field("", "the body must be a JSON object")),
        None => Err(Problem::field("", "the body is empty: send a JSON object")),
    }
}

/// Parses JSON, naming the field at fault on error. The happy path parses once with plain
/// serde_json; only a body that fails is parsed again with path tracking, so well-formed requests
/// do not pay for error reporting.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Every JSON door reads strictly first: a key given twice anywhere (even inside a value the
    // types keep as JSON: a CDS prefetch, a QuestionnaireResponse) is refused, not last-wins,
    // and a body of more values than any request needs is refused before it is read into a tree.
    protocol_engine::wire::check_json(bytes, protocol_engine::wire::MAX_JSON_VALUES)
        .map_err(|(path, message)| Problem::invalid(vec![violation(&path, &message)]))?;
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => Err(match parse_json_tracked::<T>(bytes) {
            Err(problem) => problem,
            // Unreachable in practice (the same input parsed twice); never a panic.
            Ok(_) => Problem::field("", "the body could not be parsed"),
        }),
    }
}

fn parse_json_tracked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    parse_tracked(bytes).map_err(|v| Problem::invalid(vec![v]))
}

/// Parses JSON with path tracking: the one violation at fault, by path.
fn parse_tracked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FieldViolation> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let syntax = !e.inner().is_data();
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if syntax {
            violation("", &format!("malformed JSON: {message}"))
        } else {
            violation(&path, &message)
        }
    })?;
    de.end()
        .map_err(|e| violation("", &format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Parses each item of a list on its own (a batch's `checks`), so that one bad item does not
/// hide the next: every item at fault is named, as `<field>[i].<path>`. Items are kept as raw
/// JSON until then, so nothing (a fact given twice) is lost to an intermediate form.
pub fn parse_each<T: DeserializeOwned>(
    field: &str,
    items: &[Box<serde_json::value::RawValue>],
) -> Result<Vec<T>, Problem> {
    let mut parsed = Vec::with_capacity(items.len());
    let mut violations = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_tracked::<T>(item.get().as_bytes()) {
            Ok(value) => parsed.push(value),
            Err(v) => violations.push(FieldViolation {
                field: crate::context::prefixed(&format!("{field}[{i}]"), &v.field),
                message: v.message,
            }),
        }
    }
    if violations.is_empty() {
        Ok(parsed)
    } else {
        Err(Problem::invalid(violations))
    }
}

/// A query string parsed strictly (unknown parameters refused), naming the parameter at fault.
pub struct StrictQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for StrictQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(StrictQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                Problem::invalid(vec![violation(&path, &e.inner().to_string())])
            })
    }
}

/// Turns a serde error at a path into a violation naming the most precise field: serde reports
/// unknown and missing fields at the enclosing object, so the field name is taken from the message.
fn violation(path: &str, message: &str) -> FieldViolation {
    let base = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        Some(name) if base.is_empty() => name.to_owned(),
        Some(name) if base.ends_with(&format!(".{name}")) || base == name => base.to_owned(),
        Some(name) => format!("{base}.{name}"),
        None => base.to_owned(),
    };
    FieldViolation {
        field,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol_engine::EligibilityRequest;

    fn field_of(json: &str) -> (String, String) {
        match parse_json::<EligibilityRequest>(json.as_bytes()) {
            Ok(_) => panic!("expected an error for {json}"),
            Err(p) => (p.errors[0].field.clone(), p.errors[0].message.clone()),
        }
    }

    #[test]
    fn names_the_field() {
        let ok = r#"{"treatment":"microneedling","date":"2026-12-01","history":[]}"#;
        assert!(parse_json::<EligibilityRequest>(ok.as_bytes()).is_ok());
        assert_eq!(
            field_of(r#"{"treatment":"m","date":"2026-12-01","history":[],"bogus":1}"#).0,
            "bogus"
        );
        assert_eq!(
            field_of(r#"{"treatment":"m","date":"2026-12-01"}"#).0,
            "history"
        );
        assert_eq!(
            field_of(r#"{"treatment":5,"date":"2026-12-01","history":[]}"#).0,
            "treatment"
        );
        assert_eq!(
            field_of(r#"{"treatment":"m","date":"2026-02-30","history":[]}"#).0,
            "date"
        );
        assert_eq!(
            field_of(
                r#"{"treatment":"m","date":"2026-02-01","history":[{"procedure":"ipl","date":"x"}]}"#
            )
            .0,
            "history[0].date"
        );
        assert_eq!(
            field_of(
                r#"{"treatment":"m","date":"2026-02-01","history":[{"procedure":"ipl","date":"2026-01-01","x":1}]}"#
            )
            .0,
            "history[0].x"
        );
        let (field, message) = field_of(r#"{"treatment":"m","#);
        assert_eq!(field, "");
        assert!(message.starts_with("malformed JSON"), "{message}");
        let trailing = r#"{"treatment":"m","date":"2026-12-01","history":[]} x"#;
        let Err(p) = parse_json::<EligibilityRequest>(trailing.as_bytes()) else {
            panic!("trailing characters accepted");
        };
        assert_eq!(p.errors[0].field, "");
    }
}
