//! The [`CodeIndex`] of a compiled rule set, from what it publishes: its facts, its treatments
//! and its catalogue (zones, procedures, indications), each with its `codes`.

use crate::RuleSet;

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
        let i = ix.add_fact(FactMeta {
            id: f.id.clone(),
            kind,
            question: f.question.clone(),
            codes_mean: rs.codes_mean(&f.id).unwrap_or_default(),
        });
        for c in &f.codes {
            ix.fact_code(&c.system, &c.code, i, None);
        }
    }
    for t in rs.treatments().treatments {
        // The clinic's own service codes: a booking catalogue without a standard code for a
        // treatment books it, and files its past sessions, under the rule set's id.
        ix.treatment_code(TREATMENT_SYSTEM, &t.code, &t.code);
        ix.procedure_code(TREATMENT_SYSTEM, &t.code, &t.code);
        for c in &t.codes {
            ix.treatment_code(&c.system, &c.code, &t.code);
        }
    }
    for s in rs.service_codes() {
        ix.treatment_code(&s.system, &s.code, &s.treatment);
    }
    let catalogue = rs.catalogue();
    for p in &catalogue.procedures {
        for c in &p.codes {
            ix.procedure_code(&c.system, &c.code, &p.id);
        }
    }
    for z in &catalogue.zones {
        for c in &z.codes {
            ix.zone_code(&c.system, &c.code, &z.id);
        }
    }
    for n in &catalogue.indications {
        for c in &n.codes {
            ix.indication_code(&c.system, &c.code, &n.id);
        }
    }
    ix
}
