//! Where a thing is written in a document: the path and line a change points to.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_saphyr::Spanned;

use super::Side;
use crate::compile::line_of;
use crate::document::RuleSetDoc;

/// A path in a document (`contraindications[4]`) and its line, when the document was YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The path, as validation errors name it.
    pub path: String,
    /// The 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{} line {l}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// Locations by key (`rule:<id>`, `treatment:<id>`, `device:<id>`, `role:<id>`,
/// `setting:<id>`, `indication_cap:<id>`, `policy:<id>`), from the side's own document: an
/// overlay's entries (its rules, `tighten`, `choose`) win over its base's, which are still
/// found for what the overlay does not touch.
pub(crate) struct Locator(HashMap<String, Location>);

impl Locator {
    pub fn new(side: Side<'_>) -> Self {
        let mut this = Self(HashMap::new());
        if let Some(base) = side.base {
            this.document(base, "base: ");
        }
        this.document(side.doc, "");
        this
    }

    fn put(&mut self, key: String, path: String, line: Option<u64>) {
        self.0.insert(key, Location { path, line });
    }

    fn list(&mut self, kind: &str, path: &str, ids: Vec<(String, Option<u64>)>) {
        for (i, (id, line)) in ids.into_iter().enumerate() {
            self.put(format!("{kind}:{id}"), format!("{path}[{i}]"), line);
        }
    }

    fn document(&mut self, doc: &RuleSetDoc, prefix: &str) {
        let p = |name: &str| format!("{prefix}{name}");
        self.list(
            "treatment",
            &p("treatments"),
            ids(&doc.treatments, |t| &t.id),
        );
        self.list("device", &p("devices"), ids(&doc.devices, |d| &d.id));
        self.list("role", &p("roles"), ids(&doc.roles, |r| &r.id));
        self.list("setting", &p("settings"), ids(&doc.settings, |s| &s.id));
        self.list("policy", &p("policies"), ids(&doc.policies, |p| &p.id));
        self.list(
            "indication_cap",
            &p("indication_caps"),
            ids(&doc.indication_caps, |c| &c.indication),
        );
        self.list(
            "rule",
            &p("contraindications"),
            ids(&doc.contraindications, |r| &r.id),
        );
        self.list(
            "rule",
            &p("interactions"),
            ids(&doc.interactions, |r| &r.id),
        );
        for (i, t) in doc.treatments.iter().enumerate() {
            self.put(
                format!("rule:{}.min_interval", t.value.id),
                p(&format!("treatments[{i}].min_interval_days")),
                line_of(t),
            );
        }
        if let Some(tighten) = &doc.tighten {
            self.list("role", &p("tighten.roles"), ids(&tighten.roles, |c| &c.id));
            self.list(
                "device",
                &p("tighten.devices"),
                ids(&tighten.devices, |c| &c.id),
            );
            self.list(
                "setting",
                &p("tighten.settings"),
                ids(&tighten.settings, |c| &c.id),
            );
            self.list(
                "indication_cap",
                &p("tighten.indication_caps"),
                ids(&tighten.indication_caps, |c| &c.id),
            );
            let treatments = ids(&tighten.treatments, |t| &t.id);
            for (i, (id, line)) in treatments.iter().enumerate() {
                self.put(
                    format!("rule:{id}.min_interval"),
                    p(&format!("tighten.treatments[{i}].min_interval_days")),
                    *line,
                );
            }
            self.list("treatment", &p("tighten.treatments"), treatments);
        }
        for (i, s) in doc.service_codes.iter().enumerate() {
            self.put(
                format!("service_code:{} {}", s.value.system, s.value.code),
                p(&format!("service_codes[{i}]")),
                line_of(s),
            );
        }
        for id in doc.choose.keys() {
            self.put(format!("policy:{id}"), p(&format!("choose.{id}")), None);
        }
    }

    pub fn get(&self, key: &str) -> Option<Location> {
        self.0.get(key).cloned()
    }
}

fn ids<T>(list: &[Spanned<T>], id: impl Fn(&T) -> &String) -> Vec<(String, Option<u64>)> {
    list.iter()
        .map(|s| (id(&s.value).clone(), line_of(s)))
        .collect()
}
