//! The catalogue of a rule set: every id a request may name (zones, procedures for `history`,
//! indications, roles, devices) with its display name, and the depths a device and a role bring;
//! and the catalogue views of its treatments and facts (the intake questions).
//! Booking screens, intake forms and device apps build their pickers from it instead of copying
//! ids out of the rule-set file.

use crate::api::{
    Catalogue, CodesMean, Coding, DeviceInfo, FactInfo, FactList, NamedInfo, RoleInfo,
    TreatmentInfo, TreatmentList, ZoneCapInfo,
};
use crate::depth::DepthMm;
use crate::ids::Ix;
use crate::model::{FactKind, Names, RuleSet};

/// `(id, display name, codes)` of a section, in the rule set's order.
fn named(ids: &Names, display: &[String], codes: &[Vec<Coding>]) -> Vec<NamedInfo> {
    ids.iter()
        .zip(display)
        .enumerate()
        .map(|(i, (id, name))| NamedInfo {
            id: id.to_owned(),
            name: name.clone(),
            codes: codes.get(i).cloned().unwrap_or_default(),
        })
        .collect()
}

impl RuleSet {
    /// Every zone, procedure, indication, role and device of the rule set.
    pub fn catalogue(&self) -> Catalogue {
        let rs = &*self.0;
        let d = &rs.display;
        let roles = rs
            .roles
            .iter()
            .zip(&d.roles)
            .zip(&rs.role_caps)
            .map(|((id, name), cap)| RoleInfo {
                id: id.to_owned(),
                name: name.clone(),
                max_depth_mm: *cap,
            })
            .collect();
        let devices = rs
            .devices
            .iter()
            .zip(&d.devices)
            .zip(&rs.device_defs)
            .map(|((id, name), def)| DeviceInfo {
                id: id.to_owned(),
                name: name.clone(),
                treatments: def
                    .treatments
                    .iter()
                    .map(|t| rs.treatments.name(*t).to_owned())
                    .collect(),
                max_depth_mm: def.max,
                evaluated_max_depth_mm: def.evaluated_max,
            })
            .collect();
        Catalogue {
            zones: named(&rs.zones, &d.zones, &d.zone_codes),
            procedures: named(&rs.procedures, &d.procedures, &d.procedure_codes),
            indications: named(&rs.indications, &d.indications, &d.indication_codes),
            roles,
            devices,
            ruleset: rs.meta.clone(),
        }
    }

    /// Every treatment, as the rule set describes it.
    pub fn treatments(&self) -> TreatmentList {
        let rs = &*self.0;
        let treatments = (0..rs.treatments.len())
            .filter_map(|i| Ix::try_from(i).ok())
            .filter_map(|t| self.treatment_info(t))
            .collect();
        TreatmentList {
            treatments,
            ruleset: rs.meta.clone(),
        }
    }

    /// One treatment by code.
    pub fn treatment(&self, code: &str) -> Option<TreatmentInfo> {
        self.0
            .treatments
            .get(code)
            .and_then(|t| self.treatment_info(t))
    }

    fn treatment_info(&self, t: Ix) -> Option<TreatmentInfo> {
        let rs = &*self.0;
        let d = rs.treatment_defs.get(usize::from(t))?;
        Some(TreatmentInfo {
            code: rs.treatments.name(t).to_owned(),
            name: d.name.clone(),
            description: d.description.clone(),
            needle: d.needle,
            setting: rs.settings.name(d.setting).to_owned(),
            roles: d
                .roles
                .iter()
                .map(|r| rs.roles.name(*r).to_owned())
                .collect(),
            best_for: d
                .best_for
                .iter()
                .map(|i| rs.indications.name(*i).to_owned())
                .collect(),
            devices: rs
                .device_defs
                .iter()
                .enumerate()
                .filter(|(_, dev)| dev.treatments.contains(&t))
                .filter_map(|(i, _)| Ix::try_from(i).ok())
                .map(|i| rs.devices.name(i).to_owned())
                .collect(),
            min_interval_days: d.min_interval_days,
            sessions: d.sessions,
            max_sessions: d.max_sessions,
            interval_days: d.interval_days,
            zones: d
                .zones
                .iter()
                .enumerate()
                .filter_map(|(i, z)| z.as_ref().map(|z| (i, z)))
                .filter_map(|(i, z)| Ix::try_from(i).ok().map(|i| (i, z)))
                .map(|(i, z)| ZoneCapInfo {
                    zone: rs.zones.name(i).to_owned(),
                    max_depth_mm: z.max,
                    start_depth_mm: z.start,
                })
                .collect(),
            downtime: d.downtime.clone(),
            session_minutes: d.session_minutes,
            contraindication_rules: rs
                .rules
                .iter()
                .filter(|r| r.applies.get(usize::from(t)).copied().unwrap_or(false))
                .map(|r| r.info.rule.clone())
                .collect(),
            codes: rs
                .display
                .procedure_codes
                .get(usize::from(d.procedure))
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// The codes other systems book treatments by (`service_codes`, the base's and the
    /// overlay's).
    pub fn service_codes(&self) -> &[crate::ehr::ServiceCode] {
        &self.0.service_codes
    }

    /// A device's labelled maximum depth (`None` for unknown devices and devices without needles).
    pub fn device_max_depth(&self, device: &str) -> Option<DepthMm> {
        let rs = &*self.0;
        rs.devices
            .get(device)
            .and_then(|d| rs.device_defs.get(usize::from(d)))
            .and_then(|d| d.max)
    }

    /// What the codes of fact `fact` stand for (`None` for an unknown fact): how a clinical
    /// record answers it (the CDS Hooks door reads records by it).
    pub fn codes_mean(&self, fact: &str) -> Option<CodesMean> {
        let rs = &*self.0;
        rs.facts
            .get(fact)
            .and_then(|i| rs.fact_defs.get(usize::from(i)))
            .map(|f| f.codes_mean)
    }

    /// The declared facts: enough to build an intake form.
    pub fn facts(&self) -> FactList {
        let rs = &*self.0;
        let facts = rs
            .fact_defs
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let id = Ix::try_from(i)
                    .map(|i| rs.facts.name(i).to_owned())
                    .unwrap_or_default();
                let (fact_type, min, max, values, null_means) = match &f.kind {
                    FactKind::Bool => ("bool", None, None, Vec::new(), None),
                    FactKind::Integer { min, max } => {
                        ("integer", Some(*min), Some(*max), Vec::new(), None)
                    }
                    FactKind::Enum { values } => (
                        "enum",
                        None,
                        None,
                        values.iter().map(|v| v.to_string()).collect(),
                        None,
                    ),
                    FactKind::Date { null_means } => {
                        ("date", None, None, Vec::new(), null_means.clone())
                    }
                };
                FactInfo {
                    id,
                    fact_type: fact_type.to_owned(),
                    question: f.question.clone(),
                    min,
                    max,
                    labels: values
                        .iter()
                        .cloned()
                        .zip(f.labels.iter().cloned())
                        .collect(),
                    values,
                    null_means,
                    codes: f.codes.clone(),
                }
            })
            .collect();
        FactList {
            facts,
            ruleset: rs.meta.clone(),
        }
    }
}
