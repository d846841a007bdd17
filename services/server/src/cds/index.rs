//! The [`CodeIndex`] of a compiled rule set, from what it publishes: its facts, its treatments
//! and its catalogue, each with its `codes`.

use protocol_engine::RuleSet;

use super::codes::{CodeIndex, FactMeta, Kind, TREATMENT_SYSTEM};

/// The index of `rs`.
pub fn of(rs: &RuleSet) -> CodeIndex {
    let mut ix = CodeIndex::default();
    for f in rs.facts().facts {
        let kind = match f.fact_type.as_str() {
            "bool" => Kind::Bool,
            "integer" => Kind::Integer {
                min: f.min.unwrap_or(i64::MIN),
                max: f.max.unwrap_or(i64::MAX),
            },
            "enum" => Kind::Enum {
                values: f.values.clone(),
            },
            _ => Kind::Date,
        };
        ix.add_fact(FactMeta {
            id: f.id.clone(),
            kind,
            question: f.question.clone(),
        });
    }
    for t in rs.treatments().treatments {
        ix.treatment_code(TREATMENT_SYSTEM, &t.code, &t.code);
    }
    ix
}
