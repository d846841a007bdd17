//! Devices: the treatments each serves and its labelled and evaluated maximum depths, checked
//! against the treatments and settings it is used in.

use crate::depth::DepthMm;
use crate::document::*;
use crate::ids::Ix;
use crate::model::*;

use super::compiler::{Compiler, line_of};

impl Compiler<'_> {
    pub(super) fn devices(&mut self, doc: &RuleSetDoc) {
        for (i, s) in doc.devices.iter().enumerate() {
            let (d, line, path) = (&s.value, line_of(s), format!("devices[{i}]"));
            let treatments = self.resolve_all(
                "treatment",
                |c| &c.treatments,
                &d.treatments,
                &format!("{path}.treatments"),
                line,
            );
            let max = d
                .max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.max_depth_mm"), line, q));
            let evaluated = d
                .evaluated_max_depth_mm
                .as_ref()
                .and_then(|q| self.depth(&format!("{path}.evaluated_max_depth_mm"), line, q));
            let needle = treatments.iter().any(|t| {
                self.c
                    .treatment_defs
                    .get(usize::from(*t))
                    .is_some_and(|t| t.needle)
            });
            if needle && d.max_depth_mm.is_none() {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    "a needle device needs its labelled maximum depth",
                );
            }
            if !needle && d.max_depth_mm.is_some() {
                self.problem(
                    format!("{path}.max_depth_mm"),
                    line,
                    "a device for treatments without needles has no depth",
                );
            }
            if let (Some(max), Some(ev)) = (max, evaluated)
                && ev > max
            {
                self.problem(
                    format!("{path}.evaluated_max_depth_mm"),
                    line,
                    format!(
                        "cap {} mm is above the device's labelled maximum {} mm",
                        ev.mm(),
                        max.mm()
                    ),
                );
            }
            if d.fixed_depth {
                self.fixed_depth(&path, line, d, &treatments, max);
            }
            if self.c.devices.insert(&d.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate device id '{}'", d.id),
                );
                continue;
            }
            self.c.device_defs.push(Device {
                treatments,
                max,
                evaluated_max: evaluated,
            });
            self.c.display.devices.push(d.name.clone());
        }
    }

    /// A fixed-length device (roller, stamp) always reaches its needle length: it may not serve a
    /// treatment whose setting caps depth below it, since no setting makes it shallower.
    fn fixed_depth(
        &mut self,
        path: &str,
        line: Option<u64>,
        d: &DeviceDoc,
        treatments: &[Ix],
        needle: Option<DepthMm>,
    ) {
        let Some(needle) = needle else {
            if d.max_depth_mm.is_none() {
                self.problem(
                    format!("{path}.fixed_depth"),
                    line,
                    "a fixed-length device needs its needle length in `max_depth_mm`",
                );
            }
            return;
        };
        for (j, t) in treatments.iter().enumerate() {
            let Some(def) = self.c.treatment_defs.get(usize::from(*t)) else {
                continue;
            };
            let setting = def.setting;
            let cap = self
                .c
                .setting_caps
                .get(usize::from(setting))
                .copied()
                .flatten();
            if let Some(cap) = cap
                && cap < needle
            {
                let msg = format!(
                    "fixed-length device '{}' has {} mm needles, deeper than the '{}' setting's cap of {} mm for '{}'; it cannot be set shallower",
                    d.id,
                    needle.mm(),
                    self.c.settings.name(setting),
                    cap.mm(),
                    self.c.treatments.name(*t),
                );
                self.problem(format!("{path}.treatments[{j}]"), line, msg);
            }
        }
    }
}
