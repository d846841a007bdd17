//! Conditional GETs: one place that answers with a strong `ETag`, `Cache-Control: private,
//! no-cache` and `Vary: authorization` (the answer depends on the key's clinic), and turns a
//! matching `If-None-Match` into `304 Not Modified`. Used by depth limits, the catalogue
//! (`/v1/facts`, `/v1/treatments*`) and `/openapi.json`, so a poller revalidates cheaply and
//! gets a new body exactly when the rule set it is answered from changes.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;

/// `body` with its validators, or `304` with the same headers when `If-None-Match` matches `tag`.
pub fn conditional(headers: &HeaderMap, tag: &str, body: impl IntoResponse) -> Response {
    let Ok(tag_value) = HeaderValue::from_str(tag) else {
        return Problem::internal().into_response();
    };
    let cache = [
        (header::ETAG, tag_value),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ),
        (header::VARY, HeaderValue::from_static("authorization")),
    ];
    if if_none_match(headers, tag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, body).into_response()
}

/// `If-None-Match` matches (weak comparison, as RFC 9110 prescribes for it; `*` matches).
fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_list() {
        let a = "\"abc\"";
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{a}")).expect("header"),
        );
        assert!(if_none_match(&h, a));
        assert!(!if_none_match(&h, "\"def\""));
    }

    #[test]
    fn a_match_is_304_with_the_validators_and_no_body() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"t\""));
        let res = conditional(&h, "\"t\"", "body");
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers()[header::ETAG], "\"t\"");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "private, no-cache");
        let res = conditional(&HeaderMap::new(), "\"t\"", "body");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::VARY], "authorization");
    }
}
