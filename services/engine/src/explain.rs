//! Explain mode: for each rule of a treatment, its condition tree with every node's result
//! (true, false or unknown) and the values it read.
//!
//! Kept apart from the decision path: [`crate::decide::evaluate`] and [`Cond::eval`] allocate
//! nothing for explanations. An explanation is built only when asked for, by walking the same
//! compiled conditions; every leaf's result *is* [`Cond::eval`]'s and every rule's result *is*
//! [`crate::decide::holds`]'s, so an explanation cannot disagree with the decision it explains
//! (`all`/`any`/`not` combine their parts as [`Cond::eval`] does, without short-circuiting, so
//! that every part is shown).

use jiff::civil::Date;
use serde::Serialize;

use crate::api::EligibilityRequest;
use crate::conditions::{Cmp, Cond, Ctx, Tri};
use crate::decide::{ResolvedEligibility, holds};
use crate::document::EffectKind;
use crate::error::RequestError;
use crate::facts::FactVal;
use crate::ids::{Ix, Missing};
use crate::model::{Compiled, FactKind, Names, RuleKind, RuleSet};

/// A three-valued result, as explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Truth {
    /// It holds.
    True,
    /// It does not.
    False,
    /// An answer or request input it needs was not given.
    Unknown,
}

impl From<Tri> for Truth {
    fn from(t: Tri) -> Self {
        match t {
            Tri::True => Truth::True,
            Tri::False => Truth::False,
            Tri::Unknown => Truth::Unknown,
        }
    }
}

/// One value a node read: a fact or a request input (`date`, `history`, `device`, `zones`,
/// `indication`), and its value, absent when it was not given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Used {
    /// The fact id, or the request field.
    pub input: String,
    /// The value read, rendered; absent when it was not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One node of a condition tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    /// What it tests: `all`, `any`, `not`, or a test such as `pregnant = true`,
    /// `last_isotretinoin within 180 days`, `age >= 18`.
    pub test: String,
    /// Its result.
    pub result: Truth,
    /// The values a leaf read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used: Vec<Used>,
    /// The parts of `all`, `any`, `not`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub parts: Vec<Node>,
}

/// One rule that applies to the treatment, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleExplanation {
    /// The rule id.
    pub rule: String,
    /// What it does when it fires.
    pub effect: EffectKind,
    /// Whether it fired (`true`), did not (`false`) or could not be decided (`unknown`).
    pub result: Truth,
    /// For a dated deferral that fired: the first day it no longer holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Date))]
    pub until: Option<Date>,
    /// Its condition tree.
    pub condition: Node,
}

impl RuleSet {
    /// Every rule of the request's treatment, explained: the same inputs, checks and errors as
    /// [`RuleSet::eligibility`], which this does not replace (ask both when both are wanted).
    pub fn explain_eligibility(
        &self,
        req: &EligibilityRequest,
    ) -> Result<Vec<RuleExplanation>, RequestError> {
        let resolved = ResolvedEligibility::of(&self.0, req)?;
        Ok(explain_rules(
            &self.0,
            resolved.treatment,
            &resolved.ctx(req.date),
        ))
    }
}

/// Every rule that applies to treatment `t`, explained against `ctx`.
pub(crate) fn explain_rules(rs: &Compiled, t: Ix, ctx: &Ctx<'_>) -> Vec<RuleExplanation> {
    rs.rules
        .iter()
        .filter(|r| r.applies.get(usize::from(t)).copied().unwrap_or(false))
        .map(|rule| {
            let (tri, until) = holds(rule, ctx, &mut Missing::default());
            let condition = match &rule.kind {
                RuleKind::Cond(c) => node(rs, c, ctx),
                RuleKind::AfterFact { fact, days, extra } => {
                    let wait = leaf(
                        format!("{} within {days} days", rs.facts.name(*fact)),
                        after_fact(ctx, *fact, *days),
                        vec![fact_used(rs, ctx, *fact), date_used(ctx)],
                    );
                    match extra {
                        None => wait,
                        Some(c) => combine("all", vec![wait, node(rs, c, ctx)]),
                    }
                }
                RuleKind::Gap {
                    procedure,
                    days,
                    then,
                } => leaf(
                    match then {
                        Some(t) => format!(
                            "{} within {days} days before or booked within {t} days after",
                            rs.procedures.name(*procedure)
                        ),
                        None => {
                            format!(
                                "{} within {days} days before",
                                rs.procedures.name(*procedure)
                            )
                        }
                    },
                    tri,
                    vec![history_used(rs, ctx, *procedure), date_used(ctx)],
                ),
            };
            RuleExplanation {
                rule: rule.info.rule.clone(),
                effect: rule.info.effect,
                result: tri.into(),
                until,
                condition,
            }
        })
        .collect()
}

/// The wait part of an `AfterFact` rule, as `holds` decides it.
fn after_fact(ctx: &Ctx<'_>, fact: Ix, days: i64) -> Tri {
    Cond::FactWithin(fact, days).eval(ctx, &mut Missing::default())
}

fn leaf(test: String, result: Tri, used: Vec<Used>) -> Node {
    Node {
        test,
        result: result.into(),
        used,
        parts: Vec::new(),
    }
}

/// `all` / `any` of explained parts, combined exactly as [`Cond::eval`] combines them.
fn combine(op: &str, parts: Vec<Node>) -> Node {
    let (decisive, otherwise) = if op == "all" {
        (Truth::False, Truth::True)
    } else {
        (Truth::True, Truth::False)
    };
    let result = if parts.iter().any(|p| p.result == decisive) {
        decisive
    } else if parts.iter().any(|p| p.result == Truth::Unknown) {
        Truth::Unknown
    } else {
        otherwise
    };
    Node {
        test: op.to_owned(),
        result,
        used: Vec::new(),
        parts,
    }
}

fn node(rs: &Compiled, c: &Cond, ctx: &Ctx<'_>) -> Node {
    let eval = |c: &Cond| c.eval(ctx, &mut Missing::default());
    match c {
        Cond::All(parts) => combine("all", parts.iter().map(|p| node(rs, p, ctx)).collect()),
        Cond::Any(parts) => combine("any", parts.iter().map(|p| node(rs, p, ctx)).collect()),
        Cond::Not(inner) => {
            let inner = node(rs, inner, ctx);
            Node {
                test: "not".to_owned(),
                result: match inner.result {
                    Truth::True => Truth::False,
                    Truth::False => Truth::True,
                    Truth::Unknown => Truth::Unknown,
                },
                used: Vec::new(),
                parts: vec![inner],
            }
        }
        Cond::BoolEq(f, want) => leaf(
            format!("{} = {want}", rs.facts.name(*f)),
            eval(c),
            vec![fact_used(rs, ctx, *f)],
        ),
        Cond::IntCmp(f, cmp, right) => leaf(
            format!("{} {} {right}", rs.facts.name(*f), cmp_str(*cmp)),
            eval(c),
            vec![fact_used(rs, ctx, *f)],
        ),
        Cond::IntIn(f, set) => leaf(
            format!("{} in {set:?}", rs.facts.name(*f)),
            eval(c),
            vec![fact_used(rs, ctx, *f)],
        ),
        Cond::EnumIn(f, mask) => {
            let values: Vec<String> = match rs.fact_defs.get(usize::from(*f)).map(|d| &d.kind) {
                Some(FactKind::Enum { values }) => values
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < 64 && mask & (1u64 << i) != 0)
                    .map(|(_, v)| v.to_string())
                    .collect(),
                _ => Vec::new(),
            };
            leaf(
                format!("{} in [{}]", rs.facts.name(*f), values.join(", ")),
                eval(c),
                vec![fact_used(rs, ctx, *f)],
            )
        }
        Cond::FactWithin(f, days) => leaf(
            format!("{} within {days} days", rs.facts.name(*f)),
            eval(c),
            vec![fact_used(rs, ctx, *f), date_used(ctx)],
        ),
        Cond::ProcedureWithin(p, days) => leaf(
            format!("{} within {days} days", rs.procedures.name(*p)),
            eval(c),
            vec![history_used(rs, ctx, *p), date_used(ctx)],
        ),
        Cond::Age(dob, cmp, years) => leaf(
            format!("age {} {years}", cmp_str(*cmp)),
            eval(c),
            vec![fact_used(rs, ctx, *dob), date_used(ctx)],
        ),
        Cond::DeviceIn(devices) => leaf(
            format!("device in [{}]", names(&rs.devices, devices)),
            eval(c),
            vec![Used {
                input: "device".into(),
                value: ctx.device.map(|d| rs.devices.name(d).to_owned()),
            }],
        ),
        Cond::ZoneIn(zones) => leaf(
            format!("zones include one of [{}]", names(&rs.zones, zones)),
            eval(c),
            vec![Used {
                input: "zones".into(),
                value: ctx.zones.map(|z| format!("[{}]", names(&rs.zones, z))),
            }],
        ),
        Cond::IndicationIn(indications) => leaf(
            format!("indication in [{}]", names(&rs.indications, indications)),
            eval(c),
            vec![Used {
                input: "indication".into(),
                value: ctx.indication.map(|i| rs.indications.name(i).to_owned()),
            }],
        ),
    }
}

fn cmp_str(cmp: Cmp) -> &'static str {
    match cmp {
        Cmp::Eq => "=",
        Cmp::Lt => "<",
        Cmp::Lte => "<=",
        Cmp::Gt => ">",
        Cmp::Gte => ">=",
    }
}

fn names(table: &Names, ixs: &[Ix]) -> String {
    ixs.iter()
        .map(|i| table.name(*i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A fact's answer as read: absent when unanswered, `null` for a date answered "never".
fn fact_used(rs: &Compiled, ctx: &Ctx<'_>, f: Ix) -> Used {
    let value = match ctx.facts.get(f) {
        FactVal::Unknown => None,
        FactVal::Never => Some("null".to_owned()),
        FactVal::Bool(b) => Some(b.to_string()),
        FactVal::Int(i) => Some(i.to_string()),
        FactVal::Enum(e) => Some(match rs.fact_defs.get(usize::from(f)).map(|d| &d.kind) {
            Some(FactKind::Enum { values }) => values
                .get(usize::from(e))
                .map_or_else(|| e.to_string(), |v| v.to_string()),
            _ => e.to_string(),
        }),
        FactVal::Date(d) => Some(d.to_string()),
    };
    Used {
        input: rs.facts.name(f).to_owned(),
        value,
    }
}

fn date_used(ctx: &Ctx<'_>) -> Used {
    Used {
        input: "date".into(),
        value: ctx.date.map(|d| d.to_string()),
    }
}

/// The dates of the procedure in the history (absent without a history; `[]` when never had).
fn history_used(rs: &Compiled, ctx: &Ctx<'_>, p: Ix) -> Used {
    Used {
        input: format!("history.{}", rs.procedures.name(p)),
        value: ctx.history.map(|h| {
            let dates: Vec<String> = h
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, d)| d.to_string())
                .collect();
            format!("[{}]", dates.join(", "))
        }),
    }
}
