//! gRPC statuses for the same failures REST answers with problem+json: INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming each field (the REST field paths), UNAUTHENTICATED vs
//! PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE.

use protocol_engine::RequestError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::app::AppError;
use crate::auth::AuthError;
use crate::catalog::Unavailable;
use crate::store::StoreError;

/// The `ErrorInfo.domain` of every error this service returns.
pub const DOMAIN: &str = "treatment-protocol";

/// Every failure of the door as a status: the code, a bounded message, and `ErrorInfo` with the
/// same reason REST puts in its problem (plus `BadRequest` naming fields, and the ids a rule-set
/// conflict concerns).
/// `AppError::….into_status()`: [`status`] as a method.
pub trait IntoStatus {
    fn into_status(self) -> Status;
}

impl IntoStatus for AppError {
    fn into_status(self) -> Status {
        status(self)
    }
}

pub fn status(e: AppError) -> Status {
    {
        let reason = e.reason();
        let mut metadata: Vec<(String, String)> = Vec::new();
        let (code, message, mut details) = match e {
            AppError::Invalid(r) | AppError::AnswersTwice(r) => invalid_parts(&r),
            AppError::Store(StoreError::Invalid(load)) => load_parts(&load),
            AppError::Auth(a) => {
                if let AuthError::Forbidden(scope) = a {
                    metadata.push(("scope".into(), scope.to_string()));
                }
                let s = auth(a);
                (s.code(), s.message().to_owned(), ErrorDetails::new())
            }
            AppError::Store(StoreError::Conflict {
                id,
                version,
                current,
                message,
            }) => {
                metadata.push(("id".into(), id));
                metadata.push(("version".into(), version));
                metadata.push(("current".into(), current.unwrap_or_default()));
                (Code::Aborted, clip(&message), ErrorDetails::new())
            }
            AppError::WatchExhausted(ref w) => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(
                    crate::edge::streams::WATCH_RETRY_AFTER_SECS,
                )));
                (Code::ResourceExhausted, clip(&w.to_string()), details)
            }
            AppError::Store(
                ref err @ (StoreError::Retired {
                    ref id,
                    ref version,
                }
                | StoreError::WasActive {
                    ref id,
                    ref version,
                    ..
                }),
            ) => {
                metadata.push(("id".into(), id.clone()));
                metadata.push(("version".into(), version.clone()));
                let code = if matches!(err, StoreError::Retired { .. }) {
                    Code::NotFound
                } else {
                    Code::FailedPrecondition
                };
                (code, clip(&err.to_string()), ErrorDetails::new())
            }
            AppError::Store(ref err @ StoreError::PreconditionRequired { field }) => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(
                    "PRECONDITION_REQUIRED",
                    field,
                    clip(&err.to_string()),
                );
                (Code::FailedPrecondition, clip(&err.to_string()), details)
            }
            AppError::Store(ref err @ StoreError::IdempotencyKeyReused { ref id }) => {
                metadata.push(("id".into(), id.clone()));
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation("idempotency-key", clip(&err.to_string()));
                (Code::InvalidArgument, clip(&err.to_string()), details)
            }
            AppError::Unavailable(Unavailable::Refused {
                ref id,
                ref version,
                ..
            }) => {
                metadata.push(("id".into(), id.clone()));
                metadata.push(("version".into(), version.clone()));
                (Code::Unavailable, clip(&e.to_string()), ErrorDetails::new())
            }
            AppError::NotYourRuleSet { ref id, .. } | AppError::NewRuleSet { ref id } => {
                metadata.push(("id".into(), id.clone()));
                (
                    Code::PermissionDenied,
                    clip(&e.to_string()),
                    ErrorDetails::new(),
                )
            }
            other => {
                let code = match &other {
                    AppError::Stale(_) | AppError::Unavailable(_) => Code::Unavailable,
                    AppError::Contradiction { .. } => Code::InvalidArgument,
                    AppError::NotFound(_) | AppError::Store(StoreError::NotFound { .. }) => {
                        Code::NotFound
                    }
                    AppError::NoStore
                    | AppError::DecisionLog(crate::decision_log::ReadError::Off) => {
                        Code::FailedPrecondition
                    }
                    AppError::Store(StoreError::Corrupt { .. }) => {
                        tracing::error!(error = %other, "stored rule set refused");
                        Code::DataLoss
                    }
                    _ => Code::Unavailable,
                };
                let mut details = ErrorDetails::new();
                if let AppError::Contradiction { field, message } = &other {
                    details.add_bad_request_violation(clip(field), clip(message));
                }
                (code, clip(&other.to_string()), details)
            }
        };
        details.set_error_info(
            reason,
            DOMAIN,
            metadata
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        Status::with_error_details(code, message, details)
    }
}

/// Code, message and `BadRequest` of a request error.
fn invalid_parts(e: &RequestError) -> (Code, String, ErrorDetails) {
    let mut details = ErrorDetails::new();
    for v in e.violations.iter().take(MAX_VIOLATIONS) {
        details.add_bad_request_violation(clip(&v.field), clip(&v.message));
    }
    // The same summary as REST's problem `detail`.
    let message = clip(&crate::app::violations_summary(&e.violations));
    (Code::InvalidArgument, message, details)
}

/// Code, message and `BadRequest` of a rule-set document that does not validate.
fn load_parts(load: &protocol_engine::LoadError) -> (Code, String, ErrorDetails) {
    let mut details = ErrorDetails::new();
    for p in load.problems.iter().take(MAX_VIOLATIONS) {
        let message = match p.line {
            Some(line) => format!("line {line}: {}", p.message),
            None => p.message.clone(),
        };
        details.add_bad_request_violation(clip(&p.path), clip(&message));
    }
    let message = match load.problems.as_slice() {
        [one] => clip(&one.to_string()),
        many => format!("the rule set is invalid ({} problems)", many.len()),
    };
    (Code::InvalidArgument, message, details)
}

/// Status messages and violation descriptions travel in HTTP/2 headers: keep them small even
/// when a message echoes a huge client value.
const MAX_TEXT: usize = 256;
use crate::app::MAX_VIOLATIONS;

fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A request error met before the door (while decoding): the status the door would give it.
pub fn invalid(e: RequestError) -> Status {
    AppError::Invalid(e).into_status()
}

/// An authentication failure met before the door (the admission layer): the status the door
/// would give it, `ErrorInfo` included.
pub fn auth_status(e: AuthError) -> Status {
    AppError::Auth(e).into_status()
}

fn auth(e: AuthError) -> Status {
    match e {
        AuthError::Missing => Status::unauthenticated(
            "an API key is required: send `authorization: Bearer <key>` metadata",
        ),
        AuthError::Unknown => Status::unauthenticated(e.to_string()),
        AuthError::Duplicate => Status::unauthenticated(
            "the call carries more than one `authorization` metadata value: send exactly one",
        ),
        AuthError::Forbidden(_) => Status::permission_denied(e.to_string()),
    }
}
