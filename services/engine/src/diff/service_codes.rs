//! The service codes that book a treatment: dropped or re-mapped is looser (an appointment so
//! coded is no longer checked as before: the CDS answer says it is not ours, or checks another
//! treatment), added is tighter (one more kind of appointment is checked).

use std::collections::BTreeMap;

use super::{Area, Cx, Direction};
use crate::model::Compiled;

pub(super) fn diff(old: &Compiled, new: &Compiled, cx: &mut Cx<'_>) {
    let map = |c: &Compiled| -> BTreeMap<(String, String), String> {
        c.service_codes
            .iter()
            .map(|s| ((s.system.clone(), s.code.clone()), s.treatment.clone()))
            .collect()
    };
    let (o, n) = (map(old), map(new));
    for (key, before) in &o {
        let subject = format!("{} {}", key.0, key.1);
        let at = format!("service_code:{subject}");
        match n.get(key) {
            None => cx.push(
                Area::Codes,
                &at,
                subject,
                "removed",
                Direction::Looser,
                Some(before.clone()),
                None,
            ),
            Some(after) if after != before => cx.push(
                Area::Codes,
                &at,
                subject,
                "treatment",
                Direction::Looser,
                Some(before.clone()),
                Some(after.clone()),
            ),
            Some(_) => {}
        }
    }
    for (key, after) in &n {
        if !o.contains_key(key) {
            let subject = format!("{} {}", key.0, key.1);
            cx.push(
                Area::Codes,
                &format!("service_code:{subject}"),
                subject,
                "added",
                Direction::Tighter,
                None,
                Some(after.clone()),
            );
        }
    }
}
