//! The compiler's state and the checks every section shares: recording a problem with its path
//! and line, and resolving an id in a namespace ("unknown X (did you mean ...)").

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::Spanned;

use crate::api::{RuleSetRef, SourceRef};
use crate::document::*;
use crate::error::{LoadError, Problem};
use crate::ids::Ix;
use crate::model::*;
use crate::suggest;

use super::rules;

/// A list item with the path and line it came from (which may be the overlay's, not the base's).
pub(crate) struct Item<'a, T> {
    pub path: String,
    pub line: Option<u64>,
    pub value: &'a T,
}

/// The line an item starts on; `None` when its span has none (line 0).
pub(crate) fn line_of<T>(s: &Spanned<T>) -> Option<u64> {
    Some(s.referenced.line()).filter(|l| *l > 0)
}

/// The items of a document's list, each with its path (`<name>[i]`) and line.
fn items<'a, T>(name: &str, list: &'a [Spanned<T>]) -> Vec<Item<'a, T>> {
    list.iter()
        .enumerate()
        .map(|(i, s)| Item {
            path: format!("{name}[{i}]"),
            line: line_of(s),
            value: &s.value,
        })
        .collect()
}

/// What the compiler reads: a whole document, possibly with an overlay's rules appended.
pub(crate) struct Input<'a> {
    pub doc: &'a RuleSetDoc,
    pub sources: Vec<Item<'a, SourceDoc>>,
    pub rules: Vec<Item<'a, RuleDoc>>,
    pub interactions: Vec<Item<'a, InteractionDoc>>,
    pub service_codes: Vec<Item<'a, ServiceCodeDoc>>,
}

impl<'a> Input<'a> {
    /// A document compiled as it stands (a base, or an overlay already merged on its base).
    pub fn whole(doc: &'a RuleSetDoc) -> Self {
        Self {
            doc,
            sources: items("sources", &doc.sources),
            rules: items("contraindications", &doc.contraindications),
            interactions: items("interactions", &doc.interactions),
            service_codes: items("service_codes", &doc.service_codes),
        }
    }
}

/// The compiler: the rule set being built, the sources and policies numbers refer to, and
/// every problem found so far (a load reports all of them, not just the first).
pub(crate) struct Compiler<'a> {
    pub problems: Vec<Problem>,
    pub sources: HashMap<&'a str, SourceRef>,
    /// Policy id → (unit, chosen option).
    pub policies: HashMap<&'a str, (PolicyUnit, &'a PolicyOptionDoc)>,
    pub c: Compiled,
}

impl<'a> Compiler<'a> {
    /// Compiles the sections in order, each after the sections it refers to; the rule set
    /// loads only if no problem was found.
    pub fn run(input: Input<'a>, meta: RuleSetRef) -> Result<RuleSet, LoadError> {
        let mut this = Compiler {
            problems: Vec::new(),
            sources: HashMap::new(),
            policies: HashMap::new(),
            c: Compiled {
                meta,
                facts: Names::default(),
                fact_defs: Vec::new(),
                zones: Names::default(),
                procedures: Names::default(),
                indications: Names::default(),
                settings: Names::default(),
                setting_caps: Vec::new(),
                roles: Names::default(),
                role_caps: Vec::new(),
                treatments: Names::default(),
                treatment_defs: Vec::new(),
                devices: Names::default(),
                device_defs: Vec::new(),
                display: DisplayNames::default(),
                rules: Vec::new(),
                date_of_birth: None,
                horizon_days: 0,
                fragments: Default::default(),
                service_codes: Vec::new(),
            },
        };
        let doc = input.doc;
        if doc.id.trim().is_empty() {
            this.problem("id", None, "must not be empty");
        }
        if doc.version.trim().is_empty() {
            this.problem("version", None, "must not be empty");
        }
        this.sources(&input.sources);
        this.policies(doc);
        this.facts(doc);
        this.named("zones", &doc.zones, |c| {
            (
                &mut c.zones,
                &mut c.display.zones,
                &mut c.display.zone_codes,
            )
        });
        this.named("indications", &doc.indications, |c| {
            (
                &mut c.indications,
                &mut c.display.indications,
                &mut c.display.indication_codes,
            )
        });
        this.named("procedures", &doc.procedures, |c| {
            (
                &mut c.procedures,
                &mut c.display.procedures,
                &mut c.display.procedure_codes,
            )
        });
        this.settings(doc);
        this.roles(doc);
        this.treatments(doc);
        super::service_codes::compile(&mut this, &input.service_codes);
        this.devices(doc);
        rules::compile_rules(&mut this, &input.rules);
        rules::compile_interactions(&mut this, &input.interactions);
        rules::join_gap_orders(&mut this, &input.interactions);
        rules::resolve_unless(&mut this, doc);
        rules::min_interval_rules(&mut this, doc);
        this.c.horizon_days = this.c.horizon();
        if this.problems.is_empty() {
            this.c.fragments = crate::render::Fragments::of(&this.c);
            Ok(RuleSet(Arc::new(this.c)))
        } else {
            Err(LoadError {
                problems: this.problems,
            })
        }
    }

    pub fn problem(
        &mut self,
        path: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) {
        self.problems.push(Problem::new(path, line, message));
    }

    /// Resolves an id in a namespace, recording "unknown X (did you mean ...)" when absent.
    pub fn resolve(
        &mut self,
        kind: &str,
        names: fn(&Compiled) -> &Names,
        id: &str,
        path: &str,
        line: Option<u64>,
    ) -> Option<Ix> {
        let found = names(&self.c).get(id);
        if found.is_none() {
            let msg = suggest::unknown(kind, id, names(&self.c).iter());
            self.problem(path, line, msg);
        }
        found
    }

    pub fn resolve_all(
        &mut self,
        kind: &str,
        names: fn(&Compiled) -> &Names,
        ids: &[String],
        path: &str,
        line: Option<u64>,
    ) -> Vec<Ix> {
        ids.iter()
            .enumerate()
            .filter_map(|(i, id)| self.resolve(kind, names, id, &format!("{path}[{i}]"), line))
            .collect()
    }
}
