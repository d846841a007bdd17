//! The treatment-protocol engine: rule-set model, validation and evaluation.
//!
//! Pure by design: no I/O, no async, no clock. The date of every check is an input, so any past
//! decision can be replayed from its request and the rule-set digest it names.
//!
//! The flow is `parse_document` (YAML or JSON text → [`RuleSetDoc`]), then [`compile`] (validate
//! every reference, resolve names to indices, apply an overlay) into an immutable [`RuleSet`], whose
//! methods answer the four questions: eligibility, contraindications, depth limits and plans.

#![deny(missing_docs)]

mod api;
mod catalogue;
pub mod codes;
mod compile;
mod conditions;
mod decide;
mod depth;
pub mod diff;
mod digest;
mod document;
pub mod ehr;
mod error;
mod explain;
mod facts;
pub mod fhir;
mod from_json;
mod ids;
mod intake;
mod model;
mod plain_yaml;
mod plan;
mod read;
mod render;
pub mod scenario;
mod suggest;
pub mod wire;

pub use api::*;
pub use compile::{compile, compile_bundle};
pub use depth::DepthMm;
pub use digest::{canonical_json, digest_of};
pub use document::*;
pub use error::{FieldViolation, LoadError, Problem, RequestError};
pub use explain::{Node, RuleExplanation, Truth, Used};
pub use from_json::{ReadEligibility, Verdict};
pub use model::RuleSet;
pub use read::{AnswerRef, EligibilityParts};

/// The text format of a rule-set document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, as authors write rule sets: errors carry the line they occurred on.
    Yaml,
    /// JSON, as rule sets are stored and published.
    Json,
}

/// Parses a rule-set document. YAML errors carry the line they occurred on.
///
/// YAML is read plain: a tag (`!!binary`, `!secret`), an anchor or an alias is refused, naming
/// its path and line (see `plain_yaml`), so what a reviewer reads is what is stored. Every
/// path that loads a document goes through here: publishing, the bundled rule sets and
/// `PROTOCOL_RULESETS_DIR`.
pub fn parse_document(text: &str, format: Format) -> Result<RuleSetDoc, LoadError> {
    match format {
        Format::Yaml => plain_yaml::refuse_tags_and_aliases(text).and_then(|()| {
            serde_saphyr::from_str(text).map_err(|e| {
                let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
                LoadError::single(Problem::new("", line, yaml_message(&e)))
            })
        }),
        Format::Json => {
            wire::check_json(text.as_bytes(), wire::MAX_JSON_VALUES)
                .map_err(|(path, message)| LoadError::single(Problem::new(path, None, message)))?;
            serde_json::from_str(text).map_err(|e| {
                LoadError::single(Problem::new("", Some(e.line() as u64), e.to_string()))
            })
        }
    }
}

/// The first line of a serde-saphyr error: its rendering repeats the snippet, which the line
/// number already points to.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().trim().to_owned()
}
