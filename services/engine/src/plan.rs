//! Depth limits per zone, treatment plans, and the catalogue views (treatments, facts).

use jiff::civil::Date;

use crate::api::*;
use crate::conditions::{Ctx, add_days};
use crate::decide::{Outcome, check_role_device, check_zones, evaluate, lookup, outcome_for};
use crate::depth::DepthMm;
use crate::error::{RequestError, Violations};
use crate::ids::Ix;
use crate::intake::{check_date, parse_facts, parse_history};
use crate::model::*;

/// Depth steps of a plan's ramp: 0.05 mm, finer than any pen's dial.
const RAMP_STEP_UM: u32 = 50;

impl Compiled {
    /// Every cap that applies to one zone; `None` when the treatment sets none for it.
    pub(crate) fn zone_caps(
        &self,
        t: &Treatment,
        zone: Ix,
        indication: Option<Ix>,
        device: &Device,
        role: Ix,
        precautions: &[usize],
    ) -> Option<Vec<(Bound, DepthMm)>> {
        let zone_cap = t.zones.get(usize::from(zone))?.as_ref()?;
        let mut caps: Vec<(Bound, DepthMm)> = vec![(Bound::Zone, zone_cap.max)];
        let indication_cap =
            indication.and_then(|i| t.indication_caps.get(usize::from(i)).copied().flatten());
        caps.extend(indication_cap.map(|c| (Bound::Indication, c)));
        caps.extend(device.max.map(|c| (Bound::Device, c)));
        caps.extend(device.evaluated_max.map(|c| (Bound::DeviceEvaluated, c)));
        caps.extend(
            self.role_caps
                .get(usize::from(role))
                .copied()
                .flatten()
                .map(|c| (Bound::Role, c)),
        );
        caps.extend(
            self.setting_caps
                .get(usize::from(t.setting))
                .copied()
                .flatten()
                .map(|c| (Bound::Setting, c)),
        );
        for rule in precautions.iter().filter_map(|i| self.rules.get(*i)) {
            if let Effect::Precaution(p) = &rule.effect
                && let Some(cap) = p.depth_cap_mm
                && rule
                    .cap_zones
                    .as_ref()
                    .is_none_or(|zones| zones.contains(&zone))
            {
                caps.push((Bound::Precaution(rule.info.rule.clone()), cap));
            }
        }
        Some(caps)
    }

    /// The limit from a zone's caps: their minimum and the caps equal to it, and with `explain`
    /// every cap ([`ZoneLimit::bounds`]).
    fn limit_of(&self, zone: Ix, caps: Vec<(Bound, DepthMm)>, explain: bool) -> Option<ZoneLimit> {
        let min = caps.iter().map(|(_, c)| *c).min()?;
        // Explain mode only: the normal path keeps no copy of the caps.
        let bounds = explain.then(|| {
            caps.iter()
                .map(|(bound, cap)| ZoneBound {
                    bound: bound.clone(),
                    max_depth_mm: *cap,
                })
                .collect()
        });
        Some(ZoneLimit {
            zone: self.zones.name(zone).to_owned(),
            max_depth_mm: min,
            bounds,
            bound_by: caps
                .into_iter()
                .filter(|(_, c)| *c == min)
                .map(|(b, _)| b)
                .collect(),
        })
    }
}

struct DepthQuery {
    t: Ix,
    device: Ix,
    role: Ix,
    indication: Option<Ix>,
    /// Keep every cap of each zone ([`ZoneLimit::bounds`]), not only the binding ones.
    explain: bool,
}

impl RuleSet {
    /// How deep may this device go, per zone, for this operator (and client)?
    pub fn depth_limits(&self, req: &DepthLimitsRequest) -> Result<DepthLimits, RequestError> {
        let rs = &*self.0;
        let mut errors = Violations::default();
        let t = lookup(
            &rs.treatments,
            "treatment",
            &req.treatment,
            "treatment",
            &mut errors,
        );
        let device = lookup(&rs.devices, "device", &req.device, "device", &mut errors);
        let role = lookup(&rs.roles, "role", &req.role, "role", &mut errors);
        let indication = req
            .indication
            .as_deref()
            .and_then(|i| lookup(&rs.indications, "indication", i, "indication", &mut errors));
        let facts = req.facts.as_ref().map(|f| parse_facts(rs, f, &mut errors));
        let history = req
            .history
            .as_ref()
            .map(|h| parse_history(rs, h, &mut errors));
        if let Some(date) = req.date {
            check_date(rs, "date", date, &mut errors);
        }
        if facts.is_none() && (req.date.is_some() || req.history.is_some()) {
            errors.push(
                if req.date.is_some() {
                    "date"
                } else {
                    "history"
                },
                "a date or history is only used with client facts: send `facts` too",
            );
        }
        let mut zones = Vec::new();
        if let Some(t) = t {
            check_role_device(rs, t, role, device, &mut errors);
            if rs
                .treatment_defs
                .get(usize::from(t))
                .is_some_and(|d| !d.needle)
            {
                errors.push(
                    "treatment",
                    format!("'{}' uses no needle: it has no depth limits", req.treatment),
                );
            } else if let Some(zone) = &req.zone {
                zones = check_zones(rs, t, std::slice::from_ref(zone), &mut errors);
                if let Some(v) = errors_zone_rename(&mut errors) {
                    errors = v;
                }
            }
        }
        let (t, device, role) = match errors.finish((t, device, role))? {
            (Some(t), Some(d), Some(r)) => (t, d, r),
            _ => return Err(RequestError::field("treatment", "incomplete request")),
        };
        let q = DepthQuery {
            t,
            device,
            role,
            indication,
            explain: req.explain,
        };
        if req.zone.is_none() {
            zones = rs
                .treatment_defs
                .get(usize::from(t))
                .map(|d| {
                    d.zones
                        .iter()
                        .enumerate()
                        .filter(|(_, z)| z.is_some())
                        .filter_map(|(i, _)| Ix::try_from(i).ok())
                        .collect()
                })
                .unwrap_or_default();
        }
        // The client outcome covers every zone answered; the caps of precautions that fired,
        // and of those left undecided, bind the limits (never the optimistic reading).
        let client = facts.as_ref().map(|f| {
            evaluate(
                rs,
                t,
                &Ctx {
                    date: req.date,
                    history: history.as_deref(),
                    device: Some(device),
                    zones: Some(&zones),
                    indication,
                    ..Ctx::facts_only(f)
                },
            )
        });
        let precautions: Vec<usize> = client
            .as_ref()
            .map(|o| {
                let mut all: Vec<usize> = o.fired_precautions(rs).collect();
                all.extend(&o.unknown_precautions);
                all
            })
            .unwrap_or_default();
        Ok(DepthLimits {
            treatment: req.treatment.clone(),
            device: req.device.clone(),
            role: req.role.clone(),
            indication: req.indication.clone(),
            zones: self.limits_for(&q, &zones, &precautions),
            client: client.map(|o| outcome_for(rs, t, o)),
            ruleset: rs.meta.clone(),
        })
    }

    fn limits_for(&self, q: &DepthQuery, zones: &[Ix], precautions: &[usize]) -> Vec<ZoneLimit> {
        let rs = &*self.0;
        let (Some(t), Some(device)) = (
            rs.treatment_defs.get(usize::from(q.t)),
            rs.device_defs.get(usize::from(q.device)),
        ) else {
            return Vec::new();
        };
        zones
            .iter()
            .filter_map(|z| {
                rs.zone_caps(t, *z, q.indication, device, q.role, precautions)
                    .and_then(|caps| rs.limit_of(*z, caps, q.explain))
            })
            .collect()
    }

    /// A course of treatment for this client, or the reasons there can be none yet.
    pub fn plan(&self, req: &PlanRequest) -> Result<Plan, RequestError> {
        let rs = &*self.0;
        let mut errors = Violations::default();
        let indication = lookup(
            &rs.indications,
            "indication",
            &req.indication,
            "indication",
            &mut errors,
        );
        let role = lookup(&rs.roles, "role", &req.role, "role", &mut errors);
        let device = req
            .device
            .as_deref()
            .and_then(|d| lookup(&rs.devices, "device", d, "device", &mut errors));
        let requested = req
            .treatment
            .as_deref()
            .and_then(|t| lookup(&rs.treatments, "treatment", t, "treatment", &mut errors));
        let facts = parse_facts(rs, &req.facts, &mut errors);
        let history = parse_history(rs, &req.history, &mut errors);
        if req.zones.is_empty() {
            errors.push("zones", "name at least one zone to plan");
        }
        check_date(rs, "start_date", req.start_date, &mut errors);
        let (indication, role) = match errors.finish((indication, role))? {
            (Some(i), Some(r)) => (i, r),
            _ => return Err(RequestError::field("indication", "incomplete request")),
        };
        let mut errors = Violations::default();
        let (t, rationale) = match requested {
            Some(t) => (t, format!("'{}' was requested", rs.treatments.name(t))),
            None => {
                let found = rs.treatment_defs.iter().enumerate().find(|(i, d)| {
                    d.best_for.contains(&indication)
                        && d.roles.contains(&role)
                        && device.is_none_or(|dev| {
                            rs.device_defs.get(usize::from(dev)).is_some_and(|dd| {
                                dd.treatments.iter().any(|x| usize::from(*x) == *i)
                            })
                        })
                });
                match found.and_then(|(i, _)| Ix::try_from(i).ok()) {
                    Some(t) => (
                        t,
                        format!(
                            "'{}' is the first treatment indicated for '{}' that this role and device can perform",
                            rs.treatments.name(t),
                            req.indication
                        ),
                    ),
                    None => {
                        return Err(RequestError::field(
                            "indication",
                            format!(
                                "no treatment indicated for '{}' can be performed by role '{}' with the given device",
                                req.indication, req.role
                            ),
                        ));
                    }
                }
            }
        };
        let Some(def) = rs.treatment_defs.get(usize::from(t)) else {
            return Err(RequestError::field("treatment", "unknown treatment"));
        };
        check_role_device(rs, t, Some(role), device, &mut errors);
        let zones = check_zones(rs, t, &req.zones, &mut errors);
        if def.needle && device.is_none() {
            errors.push("device", format!("required to plan needle depths for '{}': the device's labelled maximum caps every session", rs.treatments.name(t)));
        }
        errors.finish(())?;

        let ctx = Ctx {
            date: Some(req.start_date),
            history: Some(&history),
            device,
            zones: Some(&zones),
            indication: Some(indication),
            ..Ctx::facts_only(&facts)
        };
        let mut outcome = evaluate(rs, t, &ctx);
        // Preparation a precaution asks for before the first session (skin pre-conditioning):
        // the course starts after it, and the first session is decided on its own day.
        let (start, prepared_by) = prepared_start(rs, &outcome, req.start_date);
        let ctx = Ctx {
            date: Some(start),
            ..ctx
        };
        if start != req.start_date {
            outcome = evaluate(rs, t, &ctx);
        }
        // Used only when bookable: then every rule was decided, so the fired precautions are all
        // that apply.
        let mut precautions: Vec<usize> = outcome.fired_precautions(rs).collect();
        let undecided = outcome.unknown_precautions.clone();
        let first_session = self.eligibility_of(t, start, outcome);
        let sessions = def.sessions;
        let dates: Vec<Date> = (0..sessions)
            .map(|k| add_days(start, i64::from(k) * def.interval_days))
            .collect();
        let rationale = match prepared_by {
            Some(rule) => format!(
                "{rationale}; the course starts on {start}, after the preparation precaution '{rule}' asks for"
            ),
            None => rationale,
        };
        // Every later session is checked on its own date too: a procedure already booked between
        // sessions, a wait that starts later, an age rule, may refuse it. A plan is scheduled
        // only when every session is bookable, and each session's precaution caps bind them all
        // (the conservative depth for the whole course).
        let mut blocked_session = None;
        if first_session.bookable {
            for (k, date) in dates.iter().enumerate().skip(1) {
                let o = evaluate(
                    rs,
                    t,
                    &Ctx {
                        date: Some(*date),
                        ..ctx
                    },
                );
                if o.decision.bookable() {
                    for p in o.fired_precautions(rs) {
                        if !precautions.contains(&p) {
                            precautions.push(p);
                        }
                    }
                } else {
                    blocked_session = Some(BlockedSession {
                        number: u32::try_from(k + 1).unwrap_or(u32::MAX),
                        eligibility: self.eligibility_of(t, *date, o),
                    });
                    break;
                }
            }
        }
        let bookable = first_session.bookable && blocked_session.is_none();
        let schedule = if bookable {
            let limits = match device {
                Some(device) => self.limits_for(
                    &DepthQuery {
                        t,
                        device,
                        role,
                        indication: Some(indication),
                        explain: false,
                    },
                    &zones,
                    &precautions,
                ),
                None => Vec::new(),
            };
            dates
                .iter()
                .enumerate()
                .map(|(k, date)| PlannedSession {
                    number: u32::try_from(k + 1).unwrap_or(u32::MAX),
                    date: *date,
                    zones: limits
                        .iter()
                        .filter_map(|l| ramp(def, rs, l, k, sessions))
                        .collect(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let results = match (bookable, dates.first(), dates.last()) {
            (true, Some(first), Some(last)) => def
                .results
                .iter()
                .map(|m| DatedMilestone {
                    milestone: m.text.clone(),
                    date: add_days(if m.after_last { *last } else { *first }, m.days),
                    evidence: m.evidence,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Plan {
            status: if bookable {
                PlanStatus::Scheduled
            } else {
                PlanStatus::NotBookable
            },
            treatment: rs.treatments.name(t).to_owned(),
            indication: req.indication.clone(),
            rationale,
            sessions,
            interval_days: def.interval_days,
            schedule,
            precare: for_client(&def.precare, &precautions, &undecided),
            aftercare: Aftercare {
                duration_days: def.aftercare_days,
                instructions: for_client(&def.aftercare, &precautions, &undecided),
            },
            downtime: def.downtime.clone(),
            session_minutes: def.session_minutes,
            results,
            first_session,
            blocked_session,
            ruleset: rs.meta.clone(),
        })
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

/// Session `k` of `n`: a conservative first session at the zone's start depth, rising evenly to
/// the limit by the last session; never above the limit.
fn ramp(def: &Treatment, rs: &Compiled, limit: &ZoneLimit, k: usize, n: u32) -> Option<ZoneDepth> {
    let zix = rs.zones.get(&limit.zone)?;
    let start = def
        .zones
        .get(usize::from(zix))?
        .as_ref()?
        .start
        .min(limit.max_depth_mm);
    let (lo, hi) = (start.micrometres(), limit.max_depth_mm.micrometres());
    let steps = n.saturating_sub(1).max(1);
    let k = u32::try_from(k).ok()?.min(steps);
    let um = lo + (hi - lo) * k / steps;
    let depth = DepthMm::from_um(um)
        .floor_to(RAMP_STEP_UM)
        .min(limit.max_depth_mm)
        .max(start.min(limit.max_depth_mm));
    Some(ZoneDepth {
        zone: limit.zone.clone(),
        depth_mm: depth,
        max_depth_mm: limit.max_depth_mm,
    })
}

/// The first day of a course: the requested start, or later by the longest preparation a fired
/// precaution asks for (with that rule's id).
fn prepared_start(rs: &Compiled, o: &Outcome, requested: Date) -> (Date, Option<String>) {
    let longest = o
        .fired_precautions(rs)
        .filter_map(|i| rs.rules.get(i))
        .filter(|r| r.start_after_days > 0)
        .max_by_key(|r| r.start_after_days);
    match longest {
        Some(r) => (
            add_days(requested, r.start_after_days),
            Some(r.info.rule.clone()),
        ),
        None => (requested, None),
    }
}

/// The instructions for this client: those whose `unless` names no precaution that fired or
/// was left undecided.
fn for_client(list: &[Instruction], fired: &[usize], undecided: &[usize]) -> Vec<String> {
    list.iter()
        .filter(|i| {
            !i.unless
                .iter()
                .any(|r| fired.contains(r) || undecided.contains(r))
        })
        .map(|i| i.text.clone())
        .collect()
}

/// Depth-limit requests name a single zone as `zone`, not `zones[0]`.
fn errors_zone_rename(errors: &mut Violations) -> Option<Violations> {
    let taken = std::mem::take(errors);
    Some(taken.renamed("zones[0]", "zone"))
}
