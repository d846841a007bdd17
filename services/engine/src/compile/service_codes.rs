//! `service_codes`: the table from another system's service codes to treatments (the base's,
//! then an overlay's own rows). Each row names a treatment of the rule set; a code appears once,
//! so no code books two treatments and no later row silently wins over an earlier one.

use std::collections::HashMap;

use crate::document::ServiceCodeDoc;
use crate::ehr::ServiceCode;
use crate::fhir::TREATMENT_SYSTEM;

use super::compiler::{Compiler, Item};

pub(super) fn compile(c: &mut Compiler<'_>, rows: &[Item<'_, ServiceCodeDoc>]) {
    let mut seen: HashMap<(&str, &str), &str> = HashMap::new();
    for row in rows {
        let d = row.value;
        if !d.system.contains(':') || d.system.trim() != d.system {
            c.problem(
                format!("{}.system", row.path),
                row.line,
                format!("`{}` is not a code system URI (`http://snomed.info/sct`, `https://clinic.example/services`)", d.system),
            );
            continue;
        }
        if d.system == TREATMENT_SYSTEM {
            c.problem(
                format!("{}.system", row.path),
                row.line,
                format!("{TREATMENT_SYSTEM} names every treatment by its id already; map other systems' codes here"),
            );
            continue;
        }
        if d.code.trim().is_empty() || d.code.trim() != d.code {
            c.problem(
                format!("{}.code", row.path),
                row.line,
                "must be a code, without surrounding spaces",
            );
            continue;
        }
        let Some(_) = c.resolve(
            "treatment",
            |c| &c.treatments,
            &d.treatment,
            &format!("{}.treatment", row.path),
            row.line,
        ) else {
            continue;
        };
        if let Some(other) = procedure_code_of_another(c, d) {
            c.problem(
                row.path.clone(),
                row.line,
                format!(
                    "{} {} is a code of the procedure '{other}' already: a code books one treatment",
                    d.system, d.code
                ),
            );
            continue;
        }
        if let Some(first) = seen.insert((&d.system, &d.code), &row.path) {
            c.problem(
                row.path.clone(),
                row.line,
                format!(
                    "{} {} is mapped already at {first}: a code books one treatment, listed once",
                    d.system, d.code
                ),
            );
            continue;
        }
        c.c.service_codes.push(ServiceCode {
            system: d.system.clone(),
            code: d.code.clone(),
            display: d.display.clone(),
            treatment: d.treatment.clone(),
        });
    }
}

/// The other treatment whose procedure (same id) carries this code among its `codes`, if any:
/// the index would book the code as either.
fn procedure_code_of_another(c: &Compiler<'_>, d: &ServiceCodeDoc) -> Option<String> {
    c.c.treatments.iter().find_map(|t| {
        let p = c.c.procedures.get(t)?;
        let codes = c.c.display.procedure_codes.get(usize::from(p))?;
        (t != d.treatment
            && codes
                .iter()
                .any(|x| x.system == d.system && x.code == d.code))
        .then(|| t.to_owned())
    })
}
