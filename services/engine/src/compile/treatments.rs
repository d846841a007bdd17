//! Treatments: what each refers to, its course, its depth caps (by zone and by indication), its
//! session length, its care instructions and the results it promises.

use crate::api::SessionMinutes;
use crate::depth::DepthMm;
use crate::document::*;
use crate::ids::Ix;
use crate::model::*;

use super::compiler::{Compiler, line_of};

impl Compiler<'_> {
    /// The rule set's own `indication_caps`: by indication index, with the path that set each.
    fn rule_set_indication_caps(&mut self, doc: &RuleSetDoc) -> Vec<Option<(DepthMm, String)>> {
        let mut caps: Vec<Option<(DepthMm, String)>> = vec![None; self.c.indications.len()];
        for (j, s) in doc.indication_caps.iter().enumerate() {
            let (cap, line, cpath) = (&s.value, line_of(s), format!("indication_caps[{j}]"));
            let ix = self.resolve(
                "indication",
                |c| &c.indications,
                &cap.indication,
                &format!("{cpath}.indication"),
                line,
            );
            let mm = self.depth(&format!("{cpath}.max_depth_mm"), line, &cap.max_depth_mm);
            if let (Some(ix), Some(mm)) = (ix, mm)
                && let Some(slot) = caps.get_mut(usize::from(ix))
            {
                if slot.is_some() {
                    self.problem(
                        format!("{cpath}.indication"),
                        line,
                        format!("indication '{}' is capped twice", cap.indication),
                    );
                }
                *slot = Some((mm, cpath));
            }
        }
        caps
    }

    fn session_minutes(
        &mut self,
        path: &str,
        line: Option<u64>,
        m: &SessionMinutesDoc,
    ) -> Option<SessionMinutes> {
        let minutes = |this: &mut Self, end: &str, q: &QuantityDoc| {
            let p = format!("{path}.{end}");
            let r = this.quantity(&p, line, q, PolicyUnit::Days)?;
            let ok = r.value.fract() == 0.0 && (1.0..=480.0).contains(&r.value);
            if !ok {
                this.problem(
                    p,
                    line,
                    format!(
                        "{} is not a whole number of minutes between 1 and 480",
                        r.value
                    ),
                );
                return None;
            }
            Some(r.value as u32)
        };
        let min = minutes(self, "min", &m.min);
        let max = minutes(self, "max", &m.max);
        let (min, max) = (min?, max?);
        if min > max {
            self.problem(
                path,
                line,
                format!("min ({min} minutes) is above max ({max} minutes)"),
            );
            return None;
        }
        Some(SessionMinutes { min, max })
    }

    /// Compiles every treatment, in order, after the rule set's own indication caps (which bind
    /// every needle treatment). A treatment with faults is still compiled as far as it goes, so
    /// that one load reports the faults of all of them.
    pub(super) fn treatments(&mut self, doc: &RuleSetDoc) {
        let rule_set_caps = self.rule_set_indication_caps(doc);
        for (i, s) in doc.treatments.iter().enumerate() {
            let (t, line, path) = (&s.value, line_of(s), format!("treatments[{i}]"));
            let def = self.treatment(&path, line, t, &rule_set_caps);
            if self.c.treatments.insert(&t.id).is_none() {
                self.problem(
                    format!("{path}.id"),
                    line,
                    format!("duplicate treatment id '{}'", t.id),
                );
                continue;
            }
            self.c.treatment_defs.push(def);
        }
    }

    /// One treatment, step by step: what it refers to, its course, its depth caps, its session
    /// length, its care instructions and the results it promises. Faults are recorded as
    /// problems; the returned definition then holds defaults in their place (never served,
    /// since a rule set with problems does not load).
    fn treatment(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
        rule_set_caps: &[Option<(DepthMm, String)>],
    ) -> Treatment {
        let refs = self.treatment_refs(path, line, t);
        let course = self.course(path, line, t);
        let zones = self.zone_caps(path, line, t);
        let indication_caps = self.treatment_indication_caps(path, line, t, rule_set_caps);
        let session_minutes = t
            .session_minutes
            .as_ref()
            .and_then(|m| self.session_minutes(&format!("{path}.session_minutes"), line, m));
        let aftercare_days = self.days(
            &format!("{path}.aftercare.duration_days"),
            line,
            &t.aftercare.duration_days,
        );
        for (j, ins) in t
            .precare
            .iter()
            .chain(&t.aftercare.instructions)
            .enumerate()
        {
            self.cite(&format!("{path}.instructions[{j}]"), line, &ins.sources);
        }
        let results = self.results(path, line, t);
        Treatment {
            name: t.name.clone(),
            description: t.description.clone(),
            needle: t.needle,
            setting: refs.setting.unwrap_or_default(),
            roles: refs.roles,
            best_for: refs.best_for,
            procedure: refs.procedure.unwrap_or_default(),
            min_interval_days: course.min_interval_days.unwrap_or_default(),
            sessions: course.sessions.unwrap_or_default(),
            max_sessions: course.max_sessions.unwrap_or_default(),
            interval_days: course.interval_days.unwrap_or_default(),
            zones,
            indication_caps,
            precare: t.precare.iter().map(Instruction::of).collect(),
            aftercare_days: aftercare_days.unwrap_or_default(),
            aftercare: t
                .aftercare
                .instructions
                .iter()
                .map(Instruction::of)
                .collect(),
            results,
            downtime: t.downtime.clone(),
            session_minutes,
        }
    }

    /// The names a treatment refers to: itself as a procedure (so history can name it), its
    /// setting, the roles that may perform it and the indications it is best for.
    fn treatment_refs(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> TreatmentRefs {
        let procedure = self.resolve(
            "procedure",
            |c| &c.procedures,
            &t.id,
            &format!("{path}.id"),
            line,
        );
        if procedure.is_none() {
            self.problem(
                format!("{path}.id"),
                line,
                "every treatment must also be declared as a procedure, so history can name it",
            );
        }
        let setting = self.resolve(
            "setting",
            |c| &c.settings,
            &t.setting,
            &format!("{path}.setting"),
            line,
        );
        let roles = self.resolve_all(
            "role",
            |c| &c.roles,
            &t.roles,
            &format!("{path}.roles"),
            line,
        );
        let best_for = self.resolve_all(
            "indication",
            |c| &c.indications,
            &t.best_for,
            &format!("{path}.best_for"),
            line,
        );
        TreatmentRefs {
            procedure,
            setting,
            roles,
            best_for,
        }
    }

    /// The minimum interval and the course: a course may not plan more sessions than its
    /// maximum, nor sessions closer together than the minimum interval allows.
    fn course(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> Course {
        let min_interval_days = self.days(
            &format!("{path}.min_interval_days"),
            line,
            &t.min_interval_days,
        );
        let sessions = self.count(&format!("{path}.course.sessions"), line, &t.course.sessions);
        let max_sessions = self.count(
            &format!("{path}.course.max_sessions"),
            line,
            &t.course.max_sessions,
        );
        let interval_days = self.days(
            &format!("{path}.course.interval_days"),
            line,
            &t.course.interval_days,
        );
        if let (Some(a), Some(b)) = (sessions, max_sessions)
            && a > b
        {
            self.problem(
                format!("{path}.course"),
                line,
                format!("sessions ({a}) exceed max_sessions ({b})"),
            );
        }
        if let (Some(min), Some(every)) = (min_interval_days, interval_days)
            && every < min
        {
            self.problem(
                format!("{path}.course.interval_days"),
                line,
                format!(
                    "course interval {every} days is shorter than the minimum interval {min} days"
                ),
            );
        }
        Course {
            min_interval_days,
            sessions,
            max_sessions,
            interval_days,
        }
    }

    /// Depth caps by zone index (`None`: the zone is not treated). A needle treatment caps every
    /// zone it treats, with a start depth no deeper than the cap; one without needles has none.
    fn zone_caps(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
    ) -> Vec<Option<ZoneCap>> {
        let mut zones: Vec<Option<ZoneCap>> = (0..self.c.zones.len()).map(|_| None).collect();
        for (j, z) in t.zones.iter().enumerate() {
            let zpath = format!("{path}.zones[{j}]");
            let Some(zix) = self.resolve(
                "zone",
                |c| &c.zones,
                &z.zone,
                &format!("{zpath}.zone"),
                line,
            ) else {
                continue;
            };
            let max = self.depth(&format!("{zpath}.max_depth_mm"), line, &z.max_depth_mm);
            self.cite(
                &format!("{zpath}.start_depth_mm"),
                line,
                z.start_depth_mm.sources(),
            );
            let start = self.depth_value(
                &format!("{zpath}.start_depth_mm"),
                line,
                z.start_depth_mm.mm(),
            );
            if let (Some(max), Some(start)) = (max, start) {
                if start > max {
                    self.problem(
                        format!("{zpath}.start_depth_mm"),
                        line,
                        format!(
                            "start depth {} mm is above the zone cap {} mm",
                            start.mm(),
                            max.mm()
                        ),
                    );
                }
                match zones.get_mut(usize::from(zix)) {
                    Some(slot @ None) => *slot = Some(ZoneCap { max, start }),
                    _ => self.problem(
                        format!("{zpath}.zone"),
                        line,
                        format!("zone '{}' is listed twice", z.zone),
                    ),
                }
            }
        }
        if t.needle && t.zones.is_empty() {
            self.problem(
                format!("{path}.zones"),
                line,
                "a needle treatment needs a depth cap for every zone it treats; none is given",
            );
        }
        if !t.needle && (!t.zones.is_empty() || !t.indication_caps.is_empty()) {
            self.problem(
                format!("{path}.zones"),
                line,
                "a treatment without needles has no depth caps",
            );
        }
        zones
    }

    /// Depth caps by indication index: the treatment's own, each no deeper than the rule set's
    /// cap for that indication, which also binds a needle treatment that gives none.
    fn treatment_indication_caps(
        &mut self,
        path: &str,
        line: Option<u64>,
        t: &TreatmentDoc,
        rule_set_caps: &[Option<(DepthMm, String)>],
    ) -> Vec<Option<DepthMm>> {
        let mut indication_caps = vec![None; self.c.indications.len()];
        for (j, cap) in t.indication_caps.iter().enumerate() {
            let cpath = format!("{path}.indication_caps[{j}]");
            let ix = self.resolve(
                "indication",
                |c| &c.indications,
                &cap.indication,
                &format!("{cpath}.indication"),
                line,
            );
            let mm = self.depth(&format!("{cpath}.max_depth_mm"), line, &cap.max_depth_mm);
            if let (Some(ix), Some(mm)) = (ix, mm)
                && let Some(slot) = indication_caps.get_mut(usize::from(ix))
            {
                if let Some(Some((top, tpath))) = rule_set_caps.get(usize::from(ix))
                    && mm > *top
                {
                    self.problem(
                        format!("{cpath}.max_depth_mm"),
                        line,
                        format!(
                            "cap {} mm for '{}' is above the rule set's {} mm ({tpath}), which binds every needle treatment",
                            mm.mm(),
                            cap.indication,
                            top.mm()
                        ),
                    );
                }
                *slot = Some(mm);
            }
        }
        // The rule set's indication caps bind every needle treatment; a treatment's own cap
        // can only be lower.
        if t.needle {
            for (slot, top) in indication_caps.iter_mut().zip(rule_set_caps) {
                if let Some((top, _)) = top {
                    *slot = Some(slot.map_or(*top, |own| own.min(*top)));
                }
            }
        }
        indication_caps
    }

    /// The results a plan promises, each sourced and within ten years of its anchor session.
    fn results(&mut self, path: &str, line: Option<u64>, t: &TreatmentDoc) -> Vec<Milestone> {
        let mut results = Vec::new();
        for (j, m) in t.results.iter().enumerate() {
            self.cite(&format!("{path}.results[{j}]"), line, &m.sources);
            if !(0..=3650).contains(&m.days) {
                self.problem(
                    format!("{path}.results[{j}].days"),
                    line,
                    "must be between 0 and 3650",
                );
            }
            results.push(Milestone {
                text: m.milestone.clone(),
                days: m.days,
                after_last: m.after == Anchor::LastSession,
                evidence: m.evidence,
            });
        }
        results
    }
}

/// What a treatment refers to, resolved (`None` where a problem was recorded).
struct TreatmentRefs {
    procedure: Option<Ix>,
    setting: Option<Ix>,
    roles: Vec<Ix>,
    best_for: Vec<Ix>,
}

/// A treatment's minimum interval and course, resolved (`None` where a problem was recorded).
struct Course {
    min_interval_days: Option<i64>,
    sessions: Option<u32>,
    max_sessions: Option<u32>,
    interval_days: Option<i64>,
}
