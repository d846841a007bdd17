//! The catalogue of a rule set: every id a request may name (zones, procedures for `history`,
//! indications, roles, devices) with its display name, and the depths a device and a role bring.
//! Booking screens, intake forms and device apps build their pickers from it instead of copying
//! ids out of the rule-set file.

use crate::api::{Catalogue, DeviceInfo, NamedInfo, RoleInfo};
use crate::model::{Names, RuleSet};

/// `(id, display name)` of a section, in the rule set's order.
fn named(ids: &Names, display: &[String]) -> Vec<NamedInfo> {
    ids.iter()
        .zip(display)
        .map(|(id, name)| NamedInfo {
            id: id.to_owned(),
            name: name.clone(),
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
            zones: named(&rs.zones, &d.zones),
            procedures: named(&rs.procedures, &d.procedures),
            indications: named(&rs.indications, &d.indications),
            roles,
            devices,
            ruleset: rs.meta.clone(),
        }
    }
}
