//! gRPC statuses for the same failures REST answers with problem+json: INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming each field (the REST field paths), UNAUTHENTICATED vs
//! PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE.

use protocol_engine::RequestError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::context::{NoRuleSet, Stale};
use crate::store::StoreError;

/// Status messages and violation descriptions travel in HTTP/2 headers: keep them small even
/// when a message echoes a huge client value.
const MAX_TEXT: usize = 256;
const MAX_VIOLATIONS: usize = 50;

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

pub fn invalid(e: RequestError) -> Status {
    let mut details = ErrorDetails::new();
    for v in e.violations.iter().take(MAX_VIOLATIONS) {
        details.add_bad_request_violation(clip(&v.field), clip(&v.message));
    }
    let message = match e.violations.as_slice() {
        [one] if one.field.is_empty() => clip(&one.message),
        [one] => format!("{}: {}", clip(&one.field), clip(&one.message)),
        many => format!("{} fields are invalid", many.len()),
    };
    Status::with_error_details(Code::InvalidArgument, message, details)
}

pub fn auth(e: AuthError) -> Status {
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

pub fn no_ruleset(_: NoRuleSet) -> Status {
    Status::unavailable("no rule set is loaded")
}

/// The fail-closed stale policy refuses decisions.
pub fn stale(s: Stale) -> Status {
    Status::unavailable(s.to_string())
}

/// The rule-set admin service on a server without Redis.
pub fn no_store() -> Status {
    Status::failed_precondition(
        "this server runs on its local rule sets only: set PROTOCOL_REDIS_URL to publish, \
         activate and roll back rule-set versions",
    )
}

/// A store error as a status (the REST statuses of `StoreError::http_status`, in gRPC terms).
/// `conflict` is the code for a conflict: ABORTED for activations, ALREADY_EXISTS for a publish.
pub fn store(e: StoreError, conflict: Code) -> Status {
    match e {
        StoreError::Invalid(load) => {
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
            Status::with_error_details(Code::InvalidArgument, message, details)
        }
        StoreError::Conflict {
            id,
            version,
            current,
            message,
        } => {
            let mut details = ErrorDetails::new();
            details.set_error_info(
                "CONFLICT",
                "treatment-protocol",
                [
                    ("id".to_owned(), id),
                    ("version".to_owned(), version),
                    ("current".to_owned(), current.unwrap_or_default()),
                ],
            );
            Status::with_error_details(conflict, clip(&message), details)
        }
        e @ StoreError::NotFound { .. } => Status::not_found(clip(&e.to_string())),
        e @ StoreError::Corrupt { .. } => {
            tracing::error!(error = %e, "stored rule set refused");
            Status::data_loss(clip(&e.to_string()))
        }
        e @ (StoreError::Unavailable(_) | StoreError::NoActive) => {
            Status::unavailable(clip(&e.to_string()))
        }
    }
}
