//! gRPC statuses for the same failures REST answers with problem+json: INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming each field (the REST field paths), UNAUTHENTICATED vs
//! PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE.

use protocol_engine::RequestError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::app::{AppError, GrpcCode};
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

/// Every error of the door as a status: the code and `ErrorInfo.reason` from the one table
/// ([`AppError::kind`]), the message and details (`BadRequest` naming fields, the ids a rule-set
/// problem is about) from the error.
pub fn status(e: AppError) -> Status {
    let kind = e.kind();
    let mut metadata: Vec<(String, String)> = Vec::new();
    let (message, mut details) = match e {
        AppError::Invalid(r) | AppError::AnswersTwice(r) => invalid_parts(&r),
        AppError::Store(StoreError::Invalid(load)) => load_parts(&load),
        AppError::Auth(a) => {
            if let AuthError::Forbidden(scope) = a {
                metadata.push(("scope".into(), scope.to_string()));
            }
            (auth_message(&a), ErrorDetails::new())
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
            (clip(&message), ErrorDetails::new())
        }
        AppError::WatchExhausted(ref w) => {
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(
                crate::edge::streams::WATCH_RETRY_AFTER_SECS,
            )));
            (clip(&w.to_string()), details)
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
            }
            | StoreError::OutcomeUnknown {
                ref id,
                ref version,
                ..
            }),
        ) => {
            metadata.push(("id".into(), id.clone()));
            metadata.push(("version".into(), version.clone()));
            (clip(&err.to_string()), ErrorDetails::new())
        }
        AppError::Store(ref err @ StoreError::PreconditionRequired { field }) => {
            let mut details = ErrorDetails::new();
            details.add_precondition_failure_violation(
                "PRECONDITION_REQUIRED",
                field,
                clip(&err.to_string()),
            );
            (clip(&err.to_string()), details)
        }
        AppError::Store(ref err @ StoreError::IdempotencyKeyReused { ref id }) => {
            metadata.push(("id".into(), id.clone()));
            let mut details = ErrorDetails::new();
            details.add_bad_request_violation("idempotency-key", clip(&err.to_string()));
            (clip(&err.to_string()), details)
        }
        AppError::Unavailable(Unavailable::Refused {
            ref id,
            ref version,
            ..
        }) => {
            metadata.push(("id".into(), id.clone()));
            metadata.push(("version".into(), version.clone()));
            (clip(&e.to_string()), ErrorDetails::new())
        }
        AppError::Overloaded {
            limit,
            retry_after_secs,
        }
        | AppError::KeyBusy {
            limit,
            retry_after_secs,
        } => {
            metadata.push(("limit".into(), limit.to_string()));
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_secs)));
            (clip(&e.to_string()), details)
        }
        AppError::MemoryBusy {
            needed_kib,
            budget_kib,
            retry_after_secs,
        } => {
            metadata.push(("needed-kib".into(), needed_kib.to_string()));
            metadata.push(("budget-kib".into(), budget_kib.to_string()));
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_secs)));
            (clip(&e.to_string()), details)
        }
        AppError::RateLimited {
            quota,
            window_secs,
            retry_after_secs,
        } => {
            metadata.push(("quota".into(), quota.to_string()));
            metadata.push(("window-secs".into(), window_secs.to_string()));
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(retry_after_secs)));
            (clip(&e.to_string()), details)
        }
        AppError::ShuttingDown => {
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(1)));
            (clip(&e.to_string()), details)
        }
        AppError::ProbesExhausted { limit } => {
            metadata.push(("limit".into(), limit.to_string()));
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(std::time::Duration::from_secs(1)));
            (clip(&e.to_string()), details)
        }
        AppError::NotYourRuleSet { ref id, .. } | AppError::NewRuleSet { ref id } => {
            metadata.push(("id".into(), id.clone()));
            (clip(&e.to_string()), ErrorDetails::new())
        }
        other => {
            if let AppError::Store(StoreError::Corrupt { .. }) = &other {
                tracing::error!(error = %other, "stored rule set refused");
            }
            let mut details = ErrorDetails::new();
            if let AppError::Contradiction { field, message } = &other {
                details.add_bad_request_violation(clip(field), clip(message));
            }
            (clip(&other.to_string()), details)
        }
    };
    details.set_error_info(
        kind.reason,
        DOMAIN,
        metadata
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
    );
    Status::with_error_details(code(kind.grpc), message, details)
}

/// The table's gRPC code as tonic's.
pub fn code(g: GrpcCode) -> Code {
    match g {
        GrpcCode::InvalidArgument => Code::InvalidArgument,
        GrpcCode::Unauthenticated => Code::Unauthenticated,
        GrpcCode::PermissionDenied => Code::PermissionDenied,
        GrpcCode::NotFound => Code::NotFound,
        GrpcCode::Aborted => Code::Aborted,
        GrpcCode::FailedPrecondition => Code::FailedPrecondition,
        GrpcCode::ResourceExhausted => Code::ResourceExhausted,
        GrpcCode::Unavailable => Code::Unavailable,
        GrpcCode::DataLoss => Code::DataLoss,
        GrpcCode::DeadlineExceeded => Code::DeadlineExceeded,
    }
}

/// Code, message and `BadRequest` of a request error.
fn invalid_parts(e: &RequestError) -> (String, ErrorDetails) {
    let mut details = ErrorDetails::new();
    for v in e.violations.iter().take(MAX_VIOLATIONS) {
        details.add_bad_request_violation(clip(&v.field), clip(&v.message));
    }
    // The same summary as REST's problem `detail`.
    let message = clip(&crate::app::violations_summary(&e.violations));
    (message, details)
}

/// Code, message and `BadRequest` of a rule-set document that does not validate.
fn load_parts(load: &protocol_engine::LoadError) -> (String, ErrorDetails) {
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
    (message, details)
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

/// The message of an authentication failure, naming what to send.
fn auth_message(e: &AuthError) -> String {
    match e {
        AuthError::Missing => {
            "an API key is required: send `authorization: Bearer <key>` metadata".into()
        }
        AuthError::Duplicate => {
            "the call carries more than one `authorization` metadata value: send exactly one".into()
        }
        AuthError::Unknown | AuthError::Forbidden(_) | AuthError::Jwt(_) => e.to_string(),
    }
}

#[cfg(test)]
mod one_table {
    use protocol_engine::{FieldViolation, LoadError, Problem as LoadProblem, RequestError};
    use tonic_types::StatusExt;

    use super::{code, status};
    use crate::app::AppError;
    use crate::auth::{AuthError, Scope};
    use crate::catalog::Unavailable;
    use crate::context::Stale;
    use crate::http::problem::Problem;
    use crate::store::StoreError;

    /// One error of each kind the door has.
    fn every_kind() -> Vec<AppError> {
        let (id, v) = ("clinic-aurora".to_owned(), "2026.12.1".to_owned());
        let field = || RequestError {
            violations: vec![FieldViolation {
                field: "date".into(),
                message: "not a date".into(),
            }],
        };
        vec![
            AuthError::Missing.into(),
            AuthError::Unknown.into(),
            AuthError::Duplicate.into(),
            AuthError::Jwt(crate::auth::JwtCheck::Replayed).into(),
            AuthError::Forbidden(Scope::Admin).into(),
            AppError::NotYourRuleSet {
                id: id.clone(),
                tenant: "clinic-borealis".into(),
            },
            AppError::NewRuleSet { id: id.clone() },
            Stale {
                age_secs: 900,
                max_staleness_secs: 300,
            }
            .into(),
            Unavailable::Refused {
                id: id.clone(),
                version: v.clone(),
                reason: "digest".into(),
            }
            .into(),
            Unavailable::NotLoaded.into(),
            AppError::Invalid(field()),
            AppError::AnswersTwice(field()),
            AppError::Contradiction {
                field: "ruleset_version".into(),
                message: "unknown".into(),
            },
            AppError::NotFound("no such treatment".into()),
            AppError::NoStore,
            StoreError::Invalid(LoadError {
                problems: vec![LoadProblem::new("rules[0]", Some(3), "bad")],
            })
            .into(),
            StoreError::Conflict {
                id: id.clone(),
                version: v.clone(),
                current: None,
                message: "someone else activated".into(),
            }
            .into(),
            StoreError::NotFound {
                id: id.clone(),
                version: Some(v.clone()),
            }
            .into(),
            StoreError::Corrupt {
                id: id.clone(),
                version: v.clone(),
                reason: "digest".into(),
            }
            .into(),
            StoreError::NoActive.into(),
            StoreError::OutcomeUnknown {
                id: id.clone(),
                version: v.clone(),
                action: "activate",
                reason: "timed out".into(),
            }
            .into(),
            StoreError::Retired {
                id: id.clone(),
                version: v.clone(),
            }
            .into(),
            StoreError::WasActive {
                id: id.clone(),
                version: v.clone(),
                active_now: true,
            }
            .into(),
            StoreError::PreconditionRequired {
                field: "expected_current",
            }
            .into(),
            StoreError::IdempotencyKeyReused { id }.into(),
            crate::decision_log::ReadError::Off.into(),
            crate::decision_log::ReadError::Unreachable("refused".into()).into(),
            AppError::Overloaded {
                limit: 64,
                retry_after_secs: 1,
            },
            AppError::RateLimited {
                quota: 3,
                window_secs: 3600,
                retry_after_secs: 60,
            },
            AppError::KeyBusy {
                limit: 16,
                retry_after_secs: 1,
            },
            AppError::MemoryBusy {
                needed_kib: 24_576,
                budget_kib: 65_536,
                retry_after_secs: 1,
            },
            AppError::TimedOut { secs: 10 },
            AppError::BodyTimedOut { secs: 5 },
            AppError::ShuttingDown,
            AppError::ProbesExhausted { limit: 8 },
        ]
    }

    /// REST and gRPC say each error as the table says: the HTTP status, the gRPC code, the
    /// problem type and title, and the same reason on both.
    #[test]
    fn every_error_is_said_as_the_table_says_on_both_protocols() {
        // Each error is made twice (errors are not `Clone`): one for each protocol.
        for (e, again) in every_kind().into_iter().zip(every_kind()) {
            let kind = e.kind();
            let what = format!("{e:?}");
            let problem = Problem::from(again);
            let st = status(e);
            assert_eq!(problem.status, kind.http, "{what}");
            assert_eq!(problem.kind, kind.problem_type(), "{what}");
            assert_eq!(problem.title, kind.title, "{what}");
            let rest_reason = problem
                .extensions
                .as_ref()
                .and_then(|x| x.get("reason"))
                .and_then(|r| r.as_str())
                .map(str::to_owned);
            assert_eq!(rest_reason.as_deref(), Some(kind.reason), "{what}");
            assert_eq!(st.code(), code(kind.grpc), "{what}");
            let info = st.get_details_error_info().expect("ErrorInfo");
            assert_eq!(info.reason, kind.reason, "{what}");
        }
    }
}
