//! The catalogue of a rule set: every id a request may name (zones, procedures for `history`,
//! indications, roles, devices) with its display name, and the depths a device and a role bring.
//! Booking screens, intake forms and device apps build their pickers from it instead of copying
//! ids out of the rule-set file.

use crate::api::{Catalogue, Coding, DeviceInfo, NamedInfo, RoleInfo};
use crate::model::{Names, RuleSet};

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
}
