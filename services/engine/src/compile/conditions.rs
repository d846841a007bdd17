//! Type-checks a condition against the fact declarations and compiles it.

use crate::conditions::{Cmp, Cond};
use crate::document::{ConditionDoc, ScalarDoc};
use crate::ids::Ix;
use crate::model::FactKind;

use super::Compiler;

impl Compiler<'_> {
    /// A non-empty list of declared ids (devices or zones), each resolved to its index.
    fn id_list(
        &mut self,
        kind: &str,
        names: fn(&crate::model::Compiled) -> &crate::model::Names,
        path: &str,
        line: Option<u64>,
        ids: &[String],
    ) -> Option<Vec<Ix>> {
        if ids.is_empty() {
            self.problem(path, line, format!("needs at least one {kind}"));
            return None;
        }
        let resolved = self.resolve_all(kind, names, ids, path, line);
        (resolved.len() == ids.len()).then_some(resolved)
    }

    pub fn condition(&mut self, path: &str, line: Option<u64>, c: &ConditionDoc) -> Option<Cond> {
        let forms = [
            c.all.is_some(),
            c.any.is_some(),
            c.not.is_some(),
            c.fact.is_some(),
            c.within_days.is_some(),
            c.age_years.is_some(),
            c.device_in.is_some(),
            c.zone_in.is_some(),
            c.indication_in.is_some(),
        ];
        let comparisons = [
            c.eq.is_some(),
            c.in_.is_some(),
            c.lt.is_some(),
            c.lte.is_some(),
            c.gt.is_some(),
            c.gte.is_some(),
        ];
        let n_forms = forms.iter().filter(|f| **f).count();
        if n_forms != 1 {
            self.problem(path, line, "a condition needs exactly one of `all`, `any`, `not`, `fact`, `within_days`, `age_years`, `device_in`, `zone_in`, `indication_in`");
            return None;
        }
        if c.fact.is_none() && comparisons.iter().any(|x| *x) {
            self.problem(
                path,
                line,
                "`eq`, `in`, `lt`, `lte`, `gt`, `gte` go with `fact`",
            );
            return None;
        }
        if let Some(parts) = c.all.as_ref().or(c.any.as_ref()) {
            let key = if c.all.is_some() { "all" } else { "any" };
            if parts.is_empty() {
                self.problem(
                    format!("{path}.{key}"),
                    line,
                    "needs at least one condition",
                );
            }
            let compiled: Vec<Cond> = parts
                .iter()
                .enumerate()
                .filter_map(|(i, p)| self.condition(&format!("{path}.{key}[{i}]"), line, p))
                .collect();
            if compiled.len() != parts.len() {
                return None;
            }
            return Some(if c.all.is_some() {
                Cond::All(compiled)
            } else {
                Cond::Any(compiled)
            });
        }
        if let Some(inner) = &c.not {
            return self
                .condition(&format!("{path}.not"), line, inner)
                .map(|c| Cond::Not(Box::new(c)));
        }
        if let Some(w) = &c.within_days {
            let wpath = format!("{path}.within_days");
            let days = self.days(&format!("{wpath}.days"), line, &w.days)?;
            return match (&w.fact, &w.procedure) {
                (Some(fact), None) => {
                    let ix =
                        self.resolve("fact", |c| &c.facts, fact, &format!("{wpath}.fact"), line)?;
                    if !matches!(self.kind(ix), Some(FactKind::Date { .. })) {
                        self.problem(
                            format!("{wpath}.fact"),
                            line,
                            format!("'{fact}' is not a date fact; within_days needs a date"),
                        );
                        return None;
                    }
                    Some(Cond::FactWithin(ix, days))
                }
                (None, Some(procedure)) => {
                    let ix = self.resolve(
                        "procedure",
                        |c| &c.procedures,
                        procedure,
                        &format!("{wpath}.procedure"),
                        line,
                    )?;
                    Some(Cond::ProcedureWithin(ix, days))
                }
                _ => {
                    self.problem(wpath, line, "needs exactly one of `fact` or `procedure`");
                    None
                }
            };
        }
        if let Some(ids) = &c.device_in {
            let ixs = self.id_list(
                "device",
                |c| &c.devices,
                &format!("{path}.device_in"),
                line,
                ids,
            )?;
            return Some(Cond::DeviceIn(ixs));
        }
        if let Some(ids) = &c.zone_in {
            let ixs = self.id_list("zone", |c| &c.zones, &format!("{path}.zone_in"), line, ids)?;
            return Some(Cond::ZoneIn(ixs));
        }
        if let Some(ids) = &c.indication_in {
            let at = format!("{path}.indication_in");
            let ixs = self.id_list("indication", |c| &c.indications, &at, line, ids)?;
            return Some(Cond::IndicationIn(ixs));
        }
        if let Some(age) = &c.age_years {
            let Some(dob) = self
                .c
                .date_of_birth
                .filter(|ix| matches!(self.kind(*ix), Some(FactKind::Date { .. })))
            else {
                self.problem(
                    format!("{path}.age_years"),
                    line,
                    "age conditions need a declared date fact 'date_of_birth'",
                );
                return None;
            };
            return match (age.lt, age.gte) {
                (Some(n), None) => Some(Cond::Age(dob, Cmp::Lt, n)),
                (None, Some(n)) => Some(Cond::Age(dob, Cmp::Gte, n)),
                _ => {
                    self.problem(
                        format!("{path}.age_years"),
                        line,
                        "needs exactly one of `lt` or `gte`",
                    );
                    None
                }
            };
        }
        let fact = c.fact.as_deref()?;
        let fpath = format!("{path}.fact");
        let ix = self.resolve("fact", |c| &c.facts, fact, &fpath, line)?;
        if comparisons.iter().filter(|x| **x).count() != 1 {
            self.problem(
                path,
                line,
                "a fact condition needs exactly one of `eq`, `in`, `lt`, `lte`, `gt`, `gte`",
            );
            return None;
        }
        let kind = self.kind(ix)?.clone();
        let ordered = [
            (Cmp::Lt, &c.lt, "lt"),
            (Cmp::Lte, &c.lte, "lte"),
            (Cmp::Gt, &c.gt, "gt"),
            (Cmp::Gte, &c.gte, "gte"),
        ];
        match kind {
            FactKind::Date { .. } => {
                self.problem(path, line, format!("'{fact}' is a date fact and cannot be compared with a value; use `within_days`"));
                None
            }
            FactKind::Bool => match &c.eq {
                Some(ScalarDoc::Bool(b)) => Some(Cond::BoolEq(ix, *b)),
                Some(other) => {
                    self.problem(
                        format!("{path}.eq"),
                        line,
                        format!(
                            "'{fact}' is a bool fact; {} is not true or false",
                            show(other)
                        ),
                    );
                    None
                }
                None => {
                    self.problem(
                        path,
                        line,
                        format!("'{fact}' is a bool fact: only `eq: true|false` applies"),
                    );
                    None
                }
            },
            FactKind::Integer { min, max } => {
                let int = |this: &mut Self, key: &str, v: &ScalarDoc| match v {
                    ScalarDoc::Int(n) if (min..=max).contains(n) => Some(*n),
                    ScalarDoc::Int(n) => {
                        this.problem(
                            format!("{path}.{key}"),
                            line,
                            format!("{n} is outside '{fact}' range {min}..={max}"),
                        );
                        None
                    }
                    other => {
                        this.problem(
                            format!("{path}.{key}"),
                            line,
                            format!(
                                "'{fact}' is an integer fact; {} is not a whole number",
                                show(other)
                            ),
                        );
                        None
                    }
                };
                if let Some(v) = &c.eq {
                    return int(self, "eq", v).map(|n| Cond::IntCmp(ix, Cmp::Eq, n));
                }
                if let Some(vs) = &c.in_ {
                    let set: Vec<i64> = vs.iter().filter_map(|v| int(self, "in", v)).collect();
                    return (set.len() == vs.len()).then_some(Cond::IntIn(ix, set));
                }
                let (cmp, v, key) = ordered
                    .iter()
                    .find_map(|(cmp, v, key)| v.as_ref().map(|v| (*cmp, v, *key)))?;
                int(self, key, v).map(|n| Cond::IntCmp(ix, cmp, n))
            }
            FactKind::Enum { values } => {
                let value_ix = |this: &mut Self, key: &str, v: &ScalarDoc| -> Option<u32> {
                    match v {
                        ScalarDoc::Text(s) => match values.iter().position(|x| **x == **s) {
                            Some(i) => u32::try_from(i).ok(),
                            None => {
                                let msg = crate::suggest::unknown(
                                    &format!("value of '{fact}'"),
                                    s,
                                    values.iter(),
                                );
                                this.problem(format!("{path}.{key}"), line, msg);
                                None
                            }
                        },
                        other => {
                            this.problem(
                                format!("{path}.{key}"),
                                line,
                                format!(
                                    "'{fact}' is an enum fact; {} is not one of its values",
                                    show(other)
                                ),
                            );
                            None
                        }
                    }
                };
                let list: Vec<&ScalarDoc> = match (&c.eq, &c.in_) {
                    (Some(v), _) => vec![v],
                    (None, Some(vs)) => vs.iter().collect(),
                    _ => {
                        self.problem(
                            path,
                            line,
                            format!("'{fact}' is an enum fact: only `eq` or `in` apply"),
                        );
                        return None;
                    }
                };
                let key = if c.eq.is_some() { "eq" } else { "in" };
                let ixs: Vec<u32> = list.iter().filter_map(|v| value_ix(self, key, v)).collect();
                if ixs.len() != list.len() {
                    return None;
                }
                Some(Cond::EnumIn(
                    ix,
                    ixs.iter().fold(0u64, |m, i| m | (1u64 << i)),
                ))
            }
        }
    }

    fn kind(&self, ix: Ix) -> Option<&FactKind> {
        self.c.fact_defs.get(usize::from(ix)).map(|d| &d.kind)
    }
}

fn show(v: &ScalarDoc) -> String {
    match v {
        ScalarDoc::Bool(b) => b.to_string(),
        ScalarDoc::Int(n) => n.to_string(),
        ScalarDoc::Float(x) => x.to_string(),
        ScalarDoc::Text(s) => format!("'{s}'"),
    }
}
