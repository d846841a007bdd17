//! The digest that names a rule set: SHA-256 of its canonical JSON form.

use sha2::{Digest, Sha256};

use crate::document::RuleSetDoc;

/// Canonical JSON: object keys sorted, no insignificant white space. Formatting and comments in
/// the YAML source do not change it; any change of content does.
pub fn canonical_json(doc: &RuleSetDoc) -> String {
    let mut value = serde_json::to_value(doc).unwrap_or(serde_json::Value::Null);
    value.sort_all_objects();
    value.to_string()
}

/// `sha256:<hex>` of the canonical JSON form.
pub fn digest_of(doc: &RuleSetDoc) -> String {
    let hash = Sha256::digest(canonical_json(doc).as_bytes());
    format!("sha256:{}", const_hex::encode(hash))
}
