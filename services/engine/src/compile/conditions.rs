//! Type-checks a condition against the fact declarations and compiles it.

use crate::conditions::{Cmp, Cond};
use crate::document::{AgeDoc, ConditionDoc, ScalarDoc, WithinDaysDoc};
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

    /// Compiles one condition: exactly one form (`all`, `any`, `not`, `fact`, ...), each
    /// checked against the declarations by the step named after it. `None` means at least one
    /// problem was recorded, at the path of the part at fault.
    pub fn condition(&mut self, path: &str, line: Option<u64>, c: &ConditionDoc) -> Option<Cond> {
        if !self.one_form(path, line, c) {
            return None;
        }
        if let Some(parts) = &c.all {
            return self.combination("all", path, line, parts).map(Cond::All);
        }
        if let Some(parts) = &c.any {
            return self.combination("any", path, line, parts).map(Cond::Any);
        }
        if let Some(inner) = &c.not {
            return self
                .condition(&format!("{path}.not"), line, inner)
                .map(|c| Cond::Not(Box::new(c)));
        }
        if let Some(w) = &c.within_days {
            return self.within_days(&format!("{path}.within_days"), line, w);
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
            return self.age(&format!("{path}.age_years"), line, age);
        }
        self.fact_comparison(path, line, c)
    }

    /// The shape of a condition: exactly one form, and comparisons only beside `fact`. A
    /// condition that mixes forms is ambiguous, so it is refused rather than read one way.
    fn one_form(&mut self, path: &str, line: Option<u64>, c: &ConditionDoc) -> bool {
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
        if forms.iter().filter(|f| **f).count() != 1 {
            self.problem(path, line, "a condition needs exactly one of `all`, `any`, `not`, `fact`, `within_days`, `age_years`, `device_in`, `zone_in`, `indication_in`");
            return false;
        }
        if c.fact.is_none() && comparison_count(c) > 0 {
            self.problem(
                path,
                line,
                "`eq`, `in`, `lt`, `lte`, `gt`, `gte` go with `fact`",
            );
            return false;
        }
        true
    }

    /// `all` or `any` (`key`): a non-empty list whose every part compiles.
    fn combination(
        &mut self,
        key: &str,
        path: &str,
        line: Option<u64>,
        parts: &[ConditionDoc],
    ) -> Option<Vec<Cond>> {
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
        (compiled.len() == parts.len()).then_some(compiled)
    }

    /// `within_days` (at `wpath`): a date fact or a past procedure, within a number of days
    /// before the check date.
    fn within_days(&mut self, wpath: &str, line: Option<u64>, w: &WithinDaysDoc) -> Option<Cond> {
        let days = self.days(&format!("{wpath}.days"), line, &w.days)?;
        match (&w.fact, &w.procedure) {
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
        }
    }

    /// `age_years` (at `apath`): whole years from the `date_of_birth` fact, which must be declared
    /// as a date, compared one way (`lt` or `gte`).
    fn age(&mut self, apath: &str, line: Option<u64>, age: &AgeDoc) -> Option<Cond> {
        let Some(dob) = self
            .c
            .date_of_birth
            .filter(|ix| matches!(self.kind(*ix), Some(FactKind::Date { .. })))
        else {
            self.problem(
                apath,
                line,
                "age conditions need a declared date fact 'date_of_birth'",
            );
            return None;
        };
        match (age.lt, age.gte) {
            (Some(n), None) => Some(Cond::Age(dob, Cmp::Lt, n)),
            (None, Some(n)) => Some(Cond::Age(dob, Cmp::Gte, n)),
            _ => {
                self.problem(apath, line, "needs exactly one of `lt` or `gte`");
                None
            }
        }
    }

    /// `fact` with one comparison, type-checked against the fact's declaration: a value of the
    /// wrong type or out of range is a load error, never a condition that can never hold.
    fn fact_comparison(&mut self, path: &str, line: Option<u64>, c: &ConditionDoc) -> Option<Cond> {
        let fact = c.fact.as_deref()?;
        let fpath = format!("{path}.fact");
        let ix = self.resolve("fact", |c| &c.facts, fact, &fpath, line)?;
        if comparison_count(c) != 1 {
            self.problem(
                path,
                line,
                "a fact condition needs exactly one of `eq`, `in`, `lt`, `lte`, `gt`, `gte`",
            );
            return None;
        }
        let at = At { path, line, fact };
        match self.kind(ix)?.clone() {
            FactKind::Date { .. } => {
                self.problem(path, line, format!("'{fact}' is a date fact and cannot be compared with a value; use `within_days`"));
                None
            }
            FactKind::Bool => self.bool_comparison(&at, ix, c),
            FactKind::Integer { min, max } => self.integer_comparison(&at, ix, (min, max), c),
            FactKind::Enum { values } => self.enum_comparison(&at, ix, &values, c),
        }
    }

    /// A bool fact: `eq: true|false` only.
    fn bool_comparison(&mut self, at: &At<'_>, ix: Ix, c: &ConditionDoc) -> Option<Cond> {
        let At { path, line, fact } = *at;
        match &c.eq {
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
        }
    }

    /// An integer fact: `eq`, `in` or an ordering, with whole numbers in the declared range.
    fn integer_comparison(
        &mut self,
        at: &At<'_>,
        ix: Ix,
        (min, max): (i64, i64),
        c: &ConditionDoc,
    ) -> Option<Cond> {
        let At { path, line, fact } = *at;
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
        let ordered = [
            (Cmp::Lt, &c.lt, "lt"),
            (Cmp::Lte, &c.lte, "lte"),
            (Cmp::Gt, &c.gt, "gt"),
            (Cmp::Gte, &c.gte, "gte"),
        ];
        let (cmp, v, key) = ordered
            .iter()
            .find_map(|(cmp, v, key)| v.as_ref().map(|v| (*cmp, v, *key)))?;
        int(self, key, v).map(|n| Cond::IntCmp(ix, cmp, n))
    }

    /// An enum fact: `eq` or `in` over declared values, compiled to a bit mask of them.
    fn enum_comparison(
        &mut self,
        at: &At<'_>,
        ix: Ix,
        values: &[std::sync::Arc<str>],
        c: &ConditionDoc,
    ) -> Option<Cond> {
        let At { path, line, fact } = *at;
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

    fn kind(&self, ix: Ix) -> Option<&FactKind> {
        self.c.fact_defs.get(usize::from(ix)).map(|d| &d.kind)
    }
}

/// Where a fact comparison is written, for its problems: the condition's path and line, and the
/// fact it compares.
#[derive(Clone, Copy)]
struct At<'a> {
    path: &'a str,
    line: Option<u64>,
    fact: &'a str,
}

/// How many of `eq`, `in`, `lt`, `lte`, `gt`, `gte` a condition gives.
fn comparison_count(c: &ConditionDoc) -> usize {
    [
        c.eq.is_some(),
        c.in_.is_some(),
        c.lt.is_some(),
        c.lte.is_some(),
        c.gt.is_some(),
        c.gte.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
}

fn show(v: &ScalarDoc) -> String {
    match v {
        ScalarDoc::Bool(b) => b.to_string(),
        ScalarDoc::Int(n) => n.to_string(),
        ScalarDoc::Float(x) => x.to_string(),
        ScalarDoc::Text(s) => format!("'{s}'"),
    }
}
