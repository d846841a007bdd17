//! Depth limits per zone and treatment plans.

use jiff::civil::Date;

use crate::api::*;
use crate::conditions::{Ctx, add_days};
use crate::decide::{Outcome, check_role_device, check_zones, evaluate, lookup, outcome_for};
use crate::depth::DepthMm;
use crate::error::{RequestError, Violations};
use crate::facts::FactValues;
use crate::ids::Ix;
use crate::intake::{check_date, parse_history};
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

/// A depth-limits question with its ids resolved: what [`RuleSet::limits_for`] needs to give the
/// limit of each zone.
struct DepthQuery {
    t: Ix,
    device: Ix,
    role: Ix,
    indication: Option<Ix>,
    /// Keep every cap of each zone ([`ZoneLimit::bounds`]), not only the binding ones.
    explain: bool,
}

/// A depth-limits request read against the rule set: every id resolved and every answer parsed,
/// so that answering it can no longer fail.
struct DepthInputs {
    query: DepthQuery,
    /// The zone asked, resolved; empty when the request names none (then every zone the
    /// treatment may reach is answered).
    zones: Vec<Ix>,
    /// The client's answers, when sent: precaution caps then bind the limits.
    facts: Option<FactValues>,
    history: Option<Vec<(Ix, Date)>>,
    date: Option<Date>,
}

impl DepthInputs {
    /// The client outcome over every zone answered (`None` without facts). The caps of the
    /// precautions that fired, and of those left undecided, bind the limits.
    fn client_outcome(&self, rs: &Compiled) -> Option<Outcome> {
        self.facts.as_ref().map(|f| {
            evaluate(
                rs,
                self.query.t,
                &Ctx {
                    date: self.date,
                    history: self.history.as_deref(),
                    device: Some(self.query.device),
                    zones: Some(&self.zones),
                    indication: self.query.indication,
                    ..Ctx::facts_only(f)
                },
            )
        })
    }
}

impl RuleSet {
    /// How deep may this device go, per zone, for this operator (and client)?
    pub fn depth_limits(&self, req: &DepthLimitsRequest) -> Result<DepthLimits, RequestError> {
        let rs = &*self.0;
        let mut inputs = read_depth_request(rs, req)?;
        if req.zone.is_none() {
            inputs.zones = capped_zones(rs, inputs.query.t);
        }
        let client = inputs.client_outcome(rs);
        let precautions = binding_precautions(rs, client.as_ref());
        Ok(DepthLimits {
            treatment: req.treatment.clone(),
            device: req.device.clone(),
            role: req.role.clone(),
            indication: req.indication.clone(),
            zones: self.limits_for(&inputs.query, &inputs.zones, &precautions),
            client: client.map(|o| outcome_for(rs, inputs.query.t, o)),
            ruleset: rs.meta.clone(),
        })
    }

    /// The limit of each zone for a resolved query; a zone without any cap is left out.
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
}

/// Reads a depth-limits request, collecting every fault so that one answer lists all of them:
/// the ids, the client's answers, and the treatment's fit with the role, device and zone.
fn read_depth_request(
    rs: &Compiled,
    req: &DepthLimitsRequest,
) -> Result<DepthInputs, RequestError> {
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
    let facts = match (&req.facts, &req.questionnaire_response) {
        (None, None) => None,
        (facts, response) => Some(crate::fhir::parse_answers(
            rs,
            facts.as_ref().unwrap_or(&Facts::default()),
            response.as_ref(),
            &mut errors,
        )),
    };
    let history = req
        .history
        .as_ref()
        .map(|h| parse_history(rs, h, &mut errors));
    check_client_context(rs, req, facts.is_some(), &mut errors);
    let zones = match t {
        Some(t) => check_depth_target(rs, req, t, role, device, &mut errors),
        None => Vec::new(),
    };
    let (t, device, role) = match errors.finish((t, device, role))? {
        (Some(t), Some(d), Some(r)) => (t, d, r),
        _ => return Err(RequestError::field("treatment", "incomplete request")),
    };
    Ok(DepthInputs {
        query: DepthQuery {
            t,
            device,
            role,
            indication,
            explain: req.explain,
        },
        zones,
        facts,
        history,
        date: req.date,
    })
}

/// Checks the date, and refuses a date or a history sent without client facts: only the client
/// outcome reads them, so sending them alone is a mistake worth naming.
fn check_client_context(
    rs: &Compiled,
    req: &DepthLimitsRequest,
    has_facts: bool,
    errors: &mut Violations,
) {
    if let Some(date) = req.date {
        check_date(rs, "date", date, errors);
    }
    if !has_facts && (req.date.is_some() || req.history.is_some()) {
        errors.push(
            if req.date.is_some() {
                "date"
            } else {
                "history"
            },
            "a date or history is only used with client facts: send `facts` too",
        );
    }
}

/// Checks that the role and device fit the treatment, that it uses a needle (others have no
/// depth), and that the zone asked is one it may reach; returns that zone resolved.
fn check_depth_target(
    rs: &Compiled,
    req: &DepthLimitsRequest,
    t: Ix,
    role: Option<Ix>,
    device: Option<Ix>,
    errors: &mut Violations,
) -> Vec<Ix> {
    check_role_device(rs, t, role, device, errors);
    if rs
        .treatment_defs
        .get(usize::from(t))
        .is_some_and(|d| !d.needle)
    {
        errors.push(
            "treatment",
            format!("'{}' uses no needle: it has no depth limits", req.treatment),
        );
        return Vec::new();
    }
    let Some(zone) = &req.zone else {
        return Vec::new();
    };
    let zones = check_zones(rs, t, std::slice::from_ref(zone), errors);
    // Depth-limit requests name a single zone as `zone`, not `zones[0]`.
    *errors = std::mem::take(errors).renamed("zones[0]", "zone");
    zones
}

/// Every zone the treatment sets a cap for: the zones a depth-limits request answers when it
/// names none.
fn capped_zones(rs: &Compiled, t: Ix) -> Vec<Ix> {
    rs.treatment_defs
        .get(usize::from(t))
        .map(|d| {
            d.zones
                .iter()
                .enumerate()
                .filter(|(_, z)| z.is_some())
                .filter_map(|(i, _)| Ix::try_from(i).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The precautions whose caps bind a client's depth limits: those that fired and those left
/// undecided, so an unanswered question never reads as the deeper, optimistic limit.
fn binding_precautions(rs: &Compiled, client: Option<&Outcome>) -> Vec<usize> {
    client
        .map(|o| {
            let mut all: Vec<usize> = o.fired_precautions(rs).collect();
            all.extend(&o.unknown_precautions);
            all
        })
        .unwrap_or_default()
}

/// A plan request read against the rule set: every id resolved and every answer parsed.
struct PlanInputs {
    indication: Ix,
    role: Ix,
    device: Option<Ix>,
    /// The treatment asked for, if any (else the first indicated one is planned).
    requested: Option<Ix>,
    facts: FactValues,
    history: Vec<(Ix, Date)>,
}

/// A course checked session by session, from the first day the client may start.
struct CourseCheck {
    /// The first day: the requested start, or later when a precaution asks for preparation.
    start: Date,
    /// The precaution whose preparation moved the start, if any.
    prepared_by: Option<String>,
    /// One date per session, one course interval apart from `start`.
    dates: Vec<Date>,
    first_session: Eligibility,
    /// The first later session that is not bookable on its date, if any.
    blocked_session: Option<BlockedSession>,
    /// The precautions that fired on any session checked: their caps bind every session (the
    /// conservative depth for the whole course).
    precautions: Vec<usize>,
    /// The precautions left undecided on the first session.
    undecided: Vec<usize>,
}

impl CourseCheck {
    /// A plan is scheduled only when every session is bookable.
    fn bookable(&self) -> bool {
        self.first_session.bookable && self.blocked_session.is_none()
    }
}

impl RuleSet {
    /// A course of treatment for this client, or the reasons there can be none yet.
    pub fn plan(&self, req: &PlanRequest) -> Result<Plan, RequestError> {
        let rs = &*self.0;
        let inputs = read_plan_request(rs, req)?;
        let (t, rationale) = choose_treatment(rs, req, &inputs)?;
        let (def, zones) = check_plan_target(rs, req, t, &inputs)?;
        let ctx = Ctx {
            date: Some(req.start_date),
            history: Some(&inputs.history),
            device: inputs.device,
            zones: Some(&zones),
            indication: Some(inputs.indication),
            ..Ctx::facts_only(&inputs.facts)
        };
        let course = self.check_course(t, def, ctx, req.start_date);
        let rationale = match &course.prepared_by {
            Some(rule) => format!(
                "{rationale}; the course starts on {}, after the preparation precaution '{rule}' asks for",
                course.start
            ),
            None => rationale,
        };
        let (schedule, results) = if course.bookable() {
            (
                self.schedule(t, def, &inputs, &zones, &course),
                dated_results(def, &course.dates),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Plan {
            status: if course.bookable() {
                PlanStatus::Scheduled
            } else {
                PlanStatus::NotBookable
            },
            treatment: rs.treatments.name(t).to_owned(),
            indication: req.indication.clone(),
            rationale,
            sessions: def.sessions,
            interval_days: def.interval_days,
            schedule,
            precare: for_client(&def.precare, &course.precautions, &course.undecided),
            aftercare: Aftercare {
                duration_days: def.aftercare_days,
                instructions: for_client(&def.aftercare, &course.precautions, &course.undecided),
            },
            downtime: def.downtime.clone(),
            session_minutes: def.session_minutes,
            results,
            first_session: course.first_session,
            blocked_session: course.blocked_session,
            ruleset: rs.meta.clone(),
        })
    }

    /// Decides the first session on the course's first day, then every later session on its
    /// own date. Preparation a precaution asks for before the first session (skin
    /// pre-conditioning) moves the start: the course starts after it, and the first session is
    /// decided on its own day.
    fn check_course(
        &self,
        t: Ix,
        def: &Treatment,
        ctx: Ctx<'_>,
        requested_start: Date,
    ) -> CourseCheck {
        let rs = &*self.0;
        let mut outcome = evaluate(rs, t, &ctx);
        let (start, prepared_by) = prepared_start(rs, &outcome, requested_start);
        let ctx = Ctx {
            date: Some(start),
            ..ctx
        };
        if start != requested_start {
            outcome = evaluate(rs, t, &ctx);
        }
        // Used only when bookable: then every rule was decided, so the fired precautions are all
        // that apply.
        let mut precautions: Vec<usize> = outcome.fired_precautions(rs).collect();
        let undecided = outcome.unknown_precautions.clone();
        let first_session = self.eligibility_of(t, start, outcome);
        let dates = session_dates(def, start);
        let blocked_session = if first_session.bookable {
            self.first_blocked_session(t, &ctx, &dates, &mut precautions)
        } else {
            None
        };
        CourseCheck {
            start,
            prepared_by,
            dates,
            first_session,
            blocked_session,
            precautions,
            undecided,
        }
    }

    /// Checks every later session on its own date too: a procedure already booked between
    /// sessions, a wait that starts later, an age rule, may refuse it. Returns the first session
    /// that is not bookable; the precautions that fire on the bookable ones are added to
    /// `precautions`, since each session's caps bind them all.
    fn first_blocked_session(
        &self,
        t: Ix,
        ctx: &Ctx<'_>,
        dates: &[Date],
        precautions: &mut Vec<usize>,
    ) -> Option<BlockedSession> {
        let rs = &*self.0;
        for (k, date) in dates.iter().enumerate().skip(1) {
            let o = evaluate(
                rs,
                t,
                &Ctx {
                    date: Some(*date),
                    ..*ctx
                },
            );
            if !o.decision.bookable() {
                return Some(BlockedSession {
                    number: session_number(k),
                    eligibility: self.eligibility_of(t, *date, o),
                });
            }
            for p in o.fired_precautions(rs) {
                if !precautions.contains(&p) {
                    precautions.push(p);
                }
            }
        }
        None
    }

    /// The dated sessions of a bookable course, each with a depth per zone ramping up to the
    /// zone's limit for this client; no depths without a device (treatments without needles).
    fn schedule(
        &self,
        t: Ix,
        def: &Treatment,
        inputs: &PlanInputs,
        zones: &[Ix],
        course: &CourseCheck,
    ) -> Vec<PlannedSession> {
        let rs = &*self.0;
        let limits = match inputs.device {
            Some(device) => self.limits_for(
                &DepthQuery {
                    t,
                    device,
                    role: inputs.role,
                    indication: Some(inputs.indication),
                    explain: false,
                },
                zones,
                &course.precautions,
            ),
            None => Vec::new(),
        };
        course
            .dates
            .iter()
            .enumerate()
            .map(|(k, date)| PlannedSession {
                number: session_number(k),
                date: *date,
                zones: limits
                    .iter()
                    .filter_map(|l| ramp(def, rs, l, k, def.sessions))
                    .collect(),
            })
            .collect()
    }
}

/// Reads a plan request, collecting every fault so that one answer lists all of them.
fn read_plan_request(rs: &Compiled, req: &PlanRequest) -> Result<PlanInputs, RequestError> {
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
    let facts = crate::fhir::parse_answers(
        rs,
        &req.facts,
        req.questionnaire_response.as_ref(),
        &mut errors,
    );
    let history = parse_history(rs, &req.history, &mut errors);
    if req.zones.is_empty() {
        errors.push("zones", "name at least one zone to plan");
    }
    check_date(rs, "start_date", req.start_date, &mut errors);
    let (indication, role) = match errors.finish((indication, role))? {
        (Some(i), Some(r)) => (i, r),
        _ => return Err(RequestError::field("indication", "incomplete request")),
    };
    Ok(PlanInputs {
        indication,
        role,
        device,
        requested,
        facts,
        history,
    })
}

/// The treatment to plan, with the rationale the plan gives for it: the one asked for, else the
/// first indicated for the client's concern that the role and device can perform.
fn choose_treatment(
    rs: &Compiled,
    req: &PlanRequest,
    inputs: &PlanInputs,
) -> Result<(Ix, String), RequestError> {
    if let Some(t) = inputs.requested {
        return Ok((t, format!("'{}' was requested", rs.treatments.name(t))));
    }
    match first_indicated(rs, inputs) {
        Some(t) => Ok((
            t,
            format!(
                "'{}' is the first treatment indicated for '{}' that this role and device can perform",
                rs.treatments.name(t),
                req.indication
            ),
        )),
        None => Err(RequestError::field(
            "indication",
            format!(
                "no treatment indicated for '{}' can be performed by role '{}' with the given device",
                req.indication, req.role
            ),
        )),
    }
}

/// The first treatment, in the rule set's order, that is best for the indication, that the role
/// performs and that the device (when given) serves.
fn first_indicated(rs: &Compiled, inputs: &PlanInputs) -> Option<Ix> {
    let found = rs.treatment_defs.iter().enumerate().find(|(i, d)| {
        d.best_for.contains(&inputs.indication)
            && d.roles.contains(&inputs.role)
            && inputs.device.is_none_or(|dev| {
                rs.device_defs
                    .get(usize::from(dev))
                    .is_some_and(|dd| dd.treatments.iter().any(|x| usize::from(*x) == *i))
            })
    });
    found.and_then(|(i, _)| Ix::try_from(i).ok())
}

/// Checks that the chosen treatment fits the role, the device and the zones, and that a needle
/// treatment has a device (its labelled maximum caps every session); returns the treatment's
/// definition and the zones resolved.
fn check_plan_target<'a>(
    rs: &'a Compiled,
    req: &PlanRequest,
    t: Ix,
    inputs: &PlanInputs,
) -> Result<(&'a Treatment, Vec<Ix>), RequestError> {
    let Some(def) = rs.treatment_defs.get(usize::from(t)) else {
        return Err(RequestError::field("treatment", "unknown treatment"));
    };
    let mut errors = Violations::default();
    check_role_device(rs, t, Some(inputs.role), inputs.device, &mut errors);
    let zones = check_zones(rs, t, &req.zones, &mut errors);
    if def.needle && inputs.device.is_none() {
        errors.push("device", format!("required to plan needle depths for '{}': the device's labelled maximum caps every session", rs.treatments.name(t)));
    }
    errors.finish((def, zones))
}

/// The date of each session of a course starting on `start`, one course interval apart.
fn session_dates(def: &Treatment, start: Date) -> Vec<Date> {
    (0..def.sessions)
        .map(|k| add_days(start, i64::from(k) * def.interval_days))
        .collect()
}

/// The number of the session at index `k` (the first session is 1).
fn session_number(k: usize) -> u32 {
    u32::try_from(k + 1).unwrap_or(u32::MAX)
}

/// The results a bookable course promises, dated from its first or last session.
fn dated_results(def: &Treatment, dates: &[Date]) -> Vec<DatedMilestone> {
    let (Some(first), Some(last)) = (dates.first(), dates.last()) else {
        return Vec::new();
    };
    def.results
        .iter()
        .map(|m| DatedMilestone {
            milestone: m.text.clone(),
            date: add_days(if m.after_last { *last } else { *first }, m.days),
            evidence: m.evidence,
        })
        .collect()
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
