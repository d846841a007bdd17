//! A decision as a CDS Hooks card: pure, from the engine's answer and what the mapping of the
//! FHIR record noted.
//!
//! | decision | card |
//! |---|---|
//! | `contraindicated` | `critical` |
//! | `deferred`, `needs_review`, `incomplete` | `warning` (`deferred` with a date: a suggestion to rebook on it) |
//! | `eligible_with_precautions` | `info`, the precautions in `detail` |
//! | `eligible` | no card ("no guidance", as the spec puts it); `info` ("bookable") with `PROTOCOL_CDS_BOOKABLE_CARDS` |
//!
//! The card's `uuid` is the decision's `decision_id`, so feedback on a card names a decision in
//! the decision log. `source` is the deciding rule's first cited source (label and url), with the
//! rule as `topic`; every reason, source and evidence grade is in `detail`. The missing facts are
//! named with their questions: they were not found in the EHR record and stay unknown, never "no".

use protocol_engine::{Decision, EffectKind, Eligibility, Reason};
use serde_json::Value;

use super::wire::{Action, Card, Coding, Indicator, Source, Suggestion};

/// The code system of the `topic` of a card: rule ids of the rule set.
pub const RULE_SYSTEM: &str = "urn:treatment-protocol:rule";

/// The key of the card's `extension` that carries the decision as `POST /v1/eligibility` names
/// it (`decision`, `bookable`, `earliest_date`, `rules`, `missing_facts`, `missing_inputs`,
/// `ruleset`), for an EHR that files it (CDS Hooks reserves `extension` for this, keyed in
/// reverse-domain style).
pub const EXTENSION: &str = "org.treatment-protocol.decision";

/// The key of the response's `extension` that says, for each appointment of the call in order,
/// what became of it: `checked` (its treatment, decision, `bookable`, and its card's `uuid`
/// when it has one), `not-ours` (no `serviceType` code names a treatment of the clinic's rule
/// set: its codes are listed) or `not-booked` (cancelled, entered in error, a no-show). So an
/// EHR tells "checked, nothing to say" from "not this service's to check" without a card for
/// every appointment that passes (docs/api.md says why).
pub const APPOINTMENTS_EXTENSION: &str = "org.treatment-protocol.appointments";

/// The most characters a card summary has (the spec: "<140-character").
pub const MAX_SUMMARY_CHARS: usize = 139;

/// What the card needs besides the decision.
pub struct CardInput<'a> {
    pub decision_id: &'a str,
    /// The treatment's display name.
    pub treatment_name: &'a str,
    pub eligibility: &'a Eligibility,
    /// `(fact id, question)` of each missing fact.
    pub missing: &'a [(String, String)],
    /// The Appointment as sent, when a rebooking suggestion can move its `start`.
    pub appointment: Option<&'a Value>,
    /// Notes about the record read (prefetch keys not provided, conflicting records).
    pub notes: &'a [String],
    /// `PROTOCOL_CDS_BOOKABLE_CARDS`: an `info` card for `eligible` too.
    pub bookable_cards: bool,
}

/// The card of a decision; `None` for `eligible` (unless [`CardInput::bookable_cards`]).
pub fn card(input: &CardInput<'_>) -> Option<Card> {
    let e = input.eligibility;
    let indicator = match e.decision {
        Decision::Eligible if !input.bookable_cards => return None,
        Decision::Eligible | Decision::EligibleWithPrecautions => Indicator::Info,
        Decision::NeedsReview | Decision::Incomplete | Decision::Deferred => Indicator::Warning,
        Decision::Contraindicated => Indicator::Critical,
    };
    let deciding = deciding_reason(e);
    let suggestions: Vec<Suggestion> = rebook(input).into_iter().collect();
    Some(Card {
        uuid: input.decision_id.to_owned(),
        summary: summary(input, deciding),
        detail: Some(detail(input)),
        indicator,
        source: source(e, deciding),
        selection_behavior: (!suggestions.is_empty()).then_some("at-most-one"),
        suggestions,
        override_reasons: Vec::new(),
        extension: Some(extension(e)),
    })
}

/// The decision under [`EXTENSION`]; empty lists and absent dates omitted (the spec's JSON rule).
fn extension(e: &Eligibility) -> Value {
    let mut d = serde_json::Map::new();
    d.insert("treatment".into(), e.treatment.clone().into());
    d.insert("date".into(), e.date.to_string().into());
    d.insert("decision".into(), e.decision.as_str().into());
    d.insert("bookable".into(), e.bookable.into());
    if let Some(date) = e.earliest_date {
        d.insert("earliest_date".into(), date.to_string().into());
    }
    let rules: Vec<Value> = e
        .reasons
        .iter()
        .map(|r| r.info.rule.clone().into())
        .collect();
    for (key, list) in [
        ("rules", rules),
        (
            "missing_facts",
            e.missing_facts.iter().cloned().map(Value::from).collect(),
        ),
        (
            "missing_inputs",
            e.missing_inputs.iter().cloned().map(Value::from).collect(),
        ),
    ] {
        if !list.is_empty() {
            d.insert(key.into(), Value::Array(list));
        }
    }
    d.insert(
        "ruleset".into(),
        serde_json::json!({"id": e.ruleset.id, "version": e.ruleset.version, "digest": e.ruleset.digest}),
    );
    let mut ext = serde_json::Map::new();
    ext.insert(EXTENSION.into(), Value::Object(d));
    Value::Object(ext)
}

/// The reason whose effect made the decision (the first of them).
fn deciding_reason(e: &Eligibility) -> Option<&Reason> {
    let effect = match e.decision {
        Decision::Contraindicated => EffectKind::Contraindicate,
        Decision::Deferred => EffectKind::Defer,
        Decision::NeedsReview => EffectKind::RequireReview,
        Decision::EligibleWithPrecautions => EffectKind::Precaution,
        Decision::Incomplete | Decision::Eligible => return None,
    };
    e.reasons.iter().find(|r| r.info.effect == effect)
}

fn summary(input: &CardInput<'_>, deciding: Option<&Reason>) -> String {
    let e = input.eligibility;
    let head = format!("{} on {}", input.treatment_name, e.date);
    let verdict = match e.decision {
        Decision::Contraindicated => "contraindicated".to_owned(),
        Decision::Deferred => match e.earliest_date {
            Some(d) => format!("deferred, not before {d}"),
            None => "deferred, no date can be promised yet".to_owned(),
        },
        Decision::NeedsReview => "needs a clinician's review first".to_owned(),
        Decision::Incomplete => {
            let n = e.missing_facts.len() + e.missing_inputs.len();
            format!(
                "cannot be decided, {n} answer{} missing",
                if n == 1 { "" } else { "s" }
            )
        }
        Decision::EligibleWithPrecautions => "bookable with precautions".to_owned(),
        Decision::Eligible => "bookable".to_owned(),
    };
    let text = match deciding {
        Some(r) => format!("{head}: {verdict} ({})", r.info.summary),
        None => format!("{head}: {verdict}"),
    };
    shorten(&text, MAX_SUMMARY_CHARS)
}

/// `text` cut to `max` characters, ending in `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

fn source(e: &Eligibility, deciding: Option<&Reason>) -> Source {
    let ruleset = format!("Treatment protocol {} {}", e.ruleset.id, e.ruleset.version);
    match deciding {
        Some(r) => {
            let topic = Some(Coding {
                system: RULE_SYSTEM.into(),
                code: r.info.rule.clone(),
                display: Some(r.info.summary.clone()),
            });
            match r.info.sources.first() {
                Some(s) => Source {
                    label: shorten(&s.title, 200),
                    url: Some(s.url.clone()),
                    topic,
                },
                None => Source {
                    label: ruleset,
                    url: None,
                    topic,
                },
            }
        }
        None => Source {
            label: ruleset,
            url: None,
            topic: None,
        },
    }
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Markdown special characters escaped, so text from a rule set reads as text.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn detail(input: &CardInput<'_>) -> String {
    use std::fmt::Write as _;
    let e = input.eligibility;
    let mut d = String::new();
    let _ = writeln!(
        d,
        "**{}** on {}: `{}` ({}).",
        md(input.treatment_name),
        e.date,
        e.decision.as_str(),
        if e.bookable {
            "bookable"
        } else {
            "not bookable"
        }
    );
    if let Some(date) = e.earliest_date {
        let _ = writeln!(d, "\nEarliest date every wait has passed: **{date}**.");
    }
    if !e.reasons.is_empty() {
        d.push_str("\n**Reasons**\n\n");
        for r in &e.reasons {
            let i = &r.info;
            let _ = write!(
                d,
                "- {} (`{}`: {}, severity {}, evidence {}",
                md(&i.summary),
                i.rule,
                json_name(&i.effect),
                json_name(&i.severity),
                json_name(&i.evidence)
            );
            if let Some(until) = r.until {
                let _ = write!(d, ", until {until}");
            }
            d.push(')');
            for s in &i.sources {
                let _ = write!(d, " [{}]({})", md(&s.title), s.url);
            }
            d.push('\n');
        }
    }
    if !input.missing.is_empty() {
        d.push_str(
            "\n**Not in the EHR record** (unknown, never read as \"no\"; ask the client):\n\n",
        );
        for (id, question) in input.missing {
            let _ = writeln!(d, "- {} (`{id}`)", md(question));
        }
    }
    if !e.missing_inputs.is_empty() {
        let _ = writeln!(
            d,
            "\n**Missing from the booking:** {}.",
            e.missing_inputs
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !e.precautions.is_empty() {
        d.push_str("\n**Precautions**\n\n");
        for p in &e.precautions {
            for text in &p.instructions {
                let _ = writeln!(d, "- {} (`{}`)", md(text), p.rule);
            }
            if let Some(cap) = p.depth_cap_mm {
                let zones = p
                    .zones
                    .as_ref()
                    .map_or_else(|| "every zone".to_owned(), |z| z.join(", "));
                let _ = writeln!(d, "- Depth at most {} mm ({zones})", cap.mm());
            }
        }
    }
    for note in input.notes {
        let _ = writeln!(d, "\n{note}");
    }
    let _ = write!(
        d,
        "\nRule set `{}` {} (`{}`), decision `{}`.",
        e.ruleset.id, e.ruleset.version, e.ruleset.digest, input.decision_id
    );
    d
}

/// A deferral with a date: move the Appointment's `start` (and `end`) to that day, same time.
fn rebook(input: &CardInput<'_>) -> Option<Suggestion> {
    let e = input.eligibility;
    if e.decision != Decision::Deferred {
        return None;
    }
    let to = e.earliest_date?;
    let mut resource = input.appointment?.clone();
    let obj = resource.as_object_mut()?;
    let start = obj.get("start")?.as_str()?.to_owned();
    let shift = e.date.until(to).ok()?;
    obj.insert("start".into(), Value::String(moved(&start, to)?));
    if let Some(end) = obj.get("end").and_then(Value::as_str).map(str::to_owned) {
        let end_day = super::fhir::day(&end)?.checked_add(shift).ok()?;
        obj.insert("end".into(), Value::String(moved(&end, end_day)?));
    }
    Some(Suggestion {
        label: format!("Rebook on {to}"),
        uuid: uuid::Uuid::now_v7().to_string(),
        is_recommended: Some(true),
        actions: vec![Action {
            kind: "update",
            description: format!(
                "Move the appointment to {to}, the first day every wait has passed"
            ),
            resource,
        }],
    })
}

/// A FHIR `dateTime` with its day replaced (time and offset kept).
fn moved(text: &str, day: jiff::civil::Date) -> Option<String> {
    let rest = text.get(10..)?;
    (text.len() >= 10).then(|| format!("{day}{rest}"))
}

/// The response's extension under [`APPOINTMENTS_EXTENSION`]; `None` for a call without
/// appointments (the spec's JSON rule: no empty objects).
pub fn appointments_extension(
    appointments: &[super::fhir::Booked],
    outcomes: &[super::question::Outcome],
) -> Option<Value> {
    use super::question::Outcome;
    if outcomes.is_empty() {
        return None;
    }
    let entries: Vec<Value> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut e = serde_json::Map::new();
            e.insert("appointment".into(), i.into());
            if let Some(id) = appointments.get(i).and_then(|b| b.json.get("id")) {
                e.insert("id".into(), id.clone());
            }
            match o {
                Outcome::Checked(c) => {
                    let a = &c.decided.answer;
                    e.insert("status".into(), "checked".into());
                    e.insert("treatment".into(), a.treatment.clone().into());
                    e.insert("decision".into(), a.decision.as_str().into());
                    e.insert("bookable".into(), a.bookable.into());
                    if let Some(card) = &c.card {
                        e.insert("card".into(), card.uuid.clone().into());
                    }
                }
                Outcome::NotOurs(codes) => {
                    e.insert("status".into(), "not-ours".into());
                    let codes: Vec<Value> = codes
                        .iter()
                        .map(|(s, c)| serde_json::json!({"system": s, "code": c}))
                        .collect();
                    if !codes.is_empty() {
                        e.insert("service_type".into(), Value::Array(codes));
                    }
                }
                Outcome::NotBooked(status) => {
                    e.insert("status".into(), "not-booked".into());
                    e.insert("appointment_status".into(), status.clone().into());
                }
            }
            Value::Object(e)
        })
        .collect();
    let mut ext = serde_json::Map::new();
    ext.insert(APPOINTMENTS_EXTENSION.into(), Value::Array(entries));
    Some(Value::Object(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `eligible` answer of the bundled base (the load script's client without a cold-sore
    /// history).
    fn eligible() -> Eligibility {
        let doc = protocol_engine::parse_document(
            include_str!("../../../../rulesets/base.yaml"),
            protocol_engine::Format::Yaml,
        )
        .expect("base");
        let rs = protocol_engine::compile(&doc, None).expect("compiles");
        // Read when the test runs (not `include_str!`): the image's build context holds no
        // scripts, and `scripts/check-deploy` checks what the build reads.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/load-eligibility.json"
        );
        let mut req: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("load body")).expect("json");
        req["facts"]["hsv_history"] = false.into();
        let req: protocol_engine::EligibilityRequest =
            serde_json::from_value(req).expect("request");
        let answer = rs.eligibility(&req).expect("answered");
        assert_eq!(answer.decision, Decision::Eligible, "{answer:?}");
        answer
    }

    #[test]
    fn an_eligible_appointment_gets_an_info_card_only_when_the_clinic_asks_for_one() {
        let e = eligible();
        let input = |bookable_cards| CardInput {
            decision_id: "01a22b20-e688-746b-8ecc-1eb03917e606",
            treatment_name: "Microneedling",
            eligibility: &e,
            missing: &[],
            appointment: None,
            notes: &[],
            bookable_cards,
        };
        assert!(card(&input(false)).is_none());
        let c = card(&input(true)).expect("a card");
        assert_eq!(c.indicator, Indicator::Info);
        assert!(c.summary.ends_with(": bookable"), "{}", c.summary);
    }

    #[test]
    fn summaries_stay_short() {
        let long = "x".repeat(300);
        let s = shorten(&long, MAX_SUMMARY_CHARS);
        assert_eq!(s.chars().count(), MAX_SUMMARY_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(shorten("short", MAX_SUMMARY_CHARS), "short");
    }

    #[test]
    fn moving_keeps_time_and_offset() {
        let day: jiff::civil::Date = "2026-12-14".parse().expect("date");
        assert_eq!(
            moved("2026-12-01T09:30:00+01:00", day).as_deref(),
            Some("2026-12-14T09:30:00+01:00")
        );
        assert_eq!(moved("2026", day), None);
    }

    #[test]
    fn markdown_is_escaped() {
        assert_eq!(md("a *b* [c]"), "a \\*b\\* \\[c\\]");
    }
}
