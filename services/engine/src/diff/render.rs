//! Conditions rendered with names, so two versions compare by meaning and not by the index a
//! fact, zone or device happens to have.

use crate::conditions::{Cmp, Cond};
use crate::model::{Compiled, FactKind};

pub(crate) fn cond(rs: &Compiled, c: &Cond) -> String {
    let list = |items: &[Cond], op: &str| {
        let parts: Vec<String> = items.iter().map(|c| cond(rs, c)).collect();
        format!("{op}({})", parts.join(", "))
    };
    let fact = |ix| rs.facts.name(ix).to_owned();
    match c {
        Cond::All(items) => list(items, "all"),
        Cond::Any(items) => list(items, "any"),
        Cond::Not(inner) => format!("not({})", cond(rs, inner)),
        Cond::BoolEq(f, b) => format!("{} == {b}", fact(*f)),
        Cond::IntCmp(f, op, v) => format!("{} {} {v}", fact(*f), cmp(*op)),
        Cond::IntIn(f, vs) => format!("{} in {vs:?}", fact(*f)),
        Cond::EnumIn(f, mask) => {
            let values: Vec<&str> = match rs.fact_defs.get(usize::from(*f)).map(|d| &d.kind) {
                Some(FactKind::Enum { values }) => values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < 64 && mask & (1u64 << i) != 0)
                    .map(|(_, v)| &**v)
                    .collect(),
                _ => Vec::new(),
            };
            format!("{} in [{}]", fact(*f), values.join(", "))
        }
        Cond::FactWithin(f, d) => format!("{} within {d} days", fact(*f)),
        Cond::ProcedureWithin(p, d) => {
            format!("{} within {d} days", rs.procedures.name(*p))
        }
        Cond::Age(_, op, v) => format!("age {} {v}", cmp(*op)),
        Cond::DeviceIn(ds) => names("device in", ds.iter().map(|d| rs.devices.name(*d))),
        Cond::ZoneIn(zs) => names("zone in", zs.iter().map(|z| rs.zones.name(*z))),
        Cond::IndicationIn(is) => {
            names("indication in", is.iter().map(|i| rs.indications.name(*i)))
        }
    }
}

fn names<'a>(op: &str, it: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = it.collect();
    v.sort_unstable();
    format!("{op} [{}]", v.join(", "))
}

fn cmp(op: Cmp) -> &'static str {
    match op {
        Cmp::Eq => "==",
        Cmp::Lt => "<",
        Cmp::Lte => "<=",
        Cmp::Gt => ">",
        Cmp::Gte => ">=",
    }
}
