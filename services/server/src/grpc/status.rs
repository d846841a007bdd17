//! gRPC statuses for the same failures REST answers with problem+json: INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` naming each field (the REST field paths), UNAUTHENTICATED vs
//! PERMISSION_DENIED, NOT_FOUND, UNAVAILABLE.

use protocol_engine::RequestError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::context::NoRuleSet;

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
        AuthError::Forbidden(_) => Status::permission_denied(e.to_string()),
    }
}

pub fn no_ruleset(_: NoRuleSet) -> Status {
    Status::unavailable("no rule set is loaded")
}
