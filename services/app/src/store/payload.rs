//! The stored form of a rule-set version and its integrity check.
//!
//! The payload is the document's canonical JSON (`protocol_engine::canonical_json`) and its digest
//! is the SHA-256 of exactly those bytes, the same digest the engine reports in every answer. On
//! load both are checked: the bytes against the digest recorded at publish time, then the parsed
//! document against its own canonical form, id and version. A payload edited in Redis by hand, or
//! written by something else, is refused rather than served (OPA's lesson: never keep a payload
//! that failed to verify).

use protocol_engine::{LoadError, Problem, RuleSetDoc, canonical_json, digest_of};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Longest id or version accepted: keeps keys and log lines bounded.
const MAX_NAME_LEN: usize = 128;

/// Largest rule-set document accepted for publishing, as its canonical JSON (the bytes stored and
/// digested), and the body limit of `POST /v1/rulesets` and `PublishRuleSet`. The bundled base is
/// about 60 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// A document ready to store: its canonical JSON and digest.
pub(crate) struct Encoded {
    pub json: String,
    pub digest: String,
}

pub(crate) fn encode(doc: &RuleSetDoc) -> Encoded {
    let json = canonical_json(doc);
    let digest = sha256_digest(json.as_bytes());
    Encoded { json, digest }
}

/// Refuses a document whose canonical form is above [`MAX_DOCUMENT_BYTES`]: what is stored and
/// served, not what was sent, is what the limit bounds (YAML can be shorter than its JSON).
pub(crate) fn check_size(encoded: &Encoded) -> Result<(), StoreError> {
    let size = encoded.json.len();
    if size <= MAX_DOCUMENT_BYTES {
        return Ok(());
    }
    Err(StoreError::Invalid(LoadError::single(Problem::new(
        "",
        None,
        format!(
            "the document's canonical JSON form is {size} bytes, above the limit of \
             {MAX_DOCUMENT_BYTES} bytes (1 MiB) for a published rule set"
        ),
    ))))
}

/// `sha256:<hex>` of raw bytes: equal to `digest_of(doc)` when the bytes are its canonical JSON.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", const_hex::encode(Sha256::digest(bytes)))
}

/// Checks a stored payload against the digest recorded at publish time and parses it.
pub(crate) fn decode(
    id: &str,
    version: &str,
    payload: Option<String>,
    digest: Option<String>,
) -> Result<RuleSetDoc, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.to_owned(),
        version: version.to_owned(),
        reason,
    };
    let payload = payload.ok_or_else(|| corrupt("payload missing".into()))?;
    let expected = digest.ok_or_else(|| corrupt("no digest recorded for this version".into()))?;
    let actual = sha256_digest(payload.as_bytes());
    if actual != expected {
        return Err(corrupt(format!(
            "digest mismatch: recorded {expected}, payload hashes to {actual}"
        )));
    }
    let doc: RuleSetDoc = serde_json::from_str(&payload)
        .map_err(|e| corrupt(format!("payload is not a rule-set document: {e}")))?;
    if doc.id != id || doc.version != version {
        return Err(corrupt(format!(
            "payload names '{}' version '{}'",
            doc.id, doc.version
        )));
    }
    // Guards against a payload that hashes right but is not canonical (so its digest would not be
    // the one the engine reports).
    let canonical = digest_of(&doc);
    if canonical != expected {
        return Err(corrupt(format!(
            "payload is not in canonical form (canonical digest {canonical})"
        )));
    }
    Ok(doc)
}

/// Ids and versions become parts of key names and URL paths: `[A-Za-z0-9._-]`, 1 to 128
/// characters, starting with a letter or digit (so never `.`, `..` or a leading `-`).
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), StoreError> {
    let ok = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(LoadError::single(Problem::new(
            field,
            None,
            format!(
                "'{value}' must be 1 to {MAX_NAME_LEN} characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted() {
        assert!(check_name("id", "clinic-aurora").is_ok());
        assert!(check_name("version", "2026.11.1").is_ok());
        for bad in [
            "",
            "a:b",
            "a{b}",
            "a b",
            ".",
            "..",
            "-1",
            "_x",
            ".hidden",
            &"x".repeat(129),
        ] {
            assert!(check_name("id", bad).is_err(), "{bad:?}");
        }
    }
}
