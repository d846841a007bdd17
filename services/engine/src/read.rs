//! Reading an eligibility request's JSON straight into a rule set's slots: a [`DeserializeSeed`]
//! over the compiled rule set, so that every name (treatment, fact, procedure, zone, device,
//! role, indication) is resolved to its index while it is parsed, from the borrowed bytes,
//! and every answer lands in its fact slot without a map of owned strings and JSON values.
//!
//! This is the fast path of the one general path, not a second set of rules: it accepts only what
//! [`crate::RuleSet::eligibility`] accepts from the same bytes (after `serde_json::from_slice`
//! into an [`crate::EligibilityRequest`]), and gives the same answer. Whatever it does not take
//! on — any fault (a fact given twice or unknown, a bad value, an unknown field, ...), `explain`,
//! a pinned `ruleset_version` or `ruleset_digest`, a `questionnaire_response` (converted to facts
//! by the general path), a field added later — ends the read with `None`, and the caller asks the general path, which names the fault
//! with the same field and message as always. A duplicate or unknown fact is found in this one
//! pass; it is only reported by the general one. The scenario runner checks both paths agree on
//! every eligibility scenario, and `tests/from_json.rs` on generated requests.

use std::fmt;

use jiff::civil::Date;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::decide::{ResolvedEligibility, check_role_device, zone_reachable};
use crate::error::Violations;
use crate::facts::{FactVal, FactValues};
use crate::ids::{FactSet, Ix};
use crate::intake::within_horizon;
use crate::model::{Compiled, FactKind, Names};
use crate::wire::parse_strict_date;

/// Reads an eligibility request from `body`, or `None` when the general path must.
pub(crate) fn eligibility(rs: &Compiled, body: &[u8]) -> Option<(ResolvedEligibility, Date)> {
    // UTF-8 checked once for the whole body, not string by string as a byte slice would be (the
    // general path refuses a body that is not UTF-8 too).
    let text = std::str::from_utf8(body).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Request(rs).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(read)
}

/// The error that ends a fast read: never shown to anyone (the general path reports the fault).
fn off<E: de::Error>() -> E {
    E::custom("not on the fast path")
}

/// The request's fields (those of [`crate::EligibilityRequest`]).
enum Key {
    Treatment,
    Date,
    Facts,
    History,
    Zones,
    Device,
    Role,
    Indication,
    /// `ruleset_version`: taken here only when `null`.
    Version,
    /// `ruleset_digest`: taken here only when `null`.
    Digest,
    Explain,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field of an eligibility request")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "treatment" => Key::Treatment,
            "date" => Key::Date,
            "facts" => Key::Facts,
            "history" => Key::History,
            "zones" => Key::Zones,
            "device" => Key::Device,
            "role" => Key::Role,
            "indication" => Key::Indication,
            "ruleset_version" => Key::Version,
            "ruleset_digest" => Key::Digest,
            "explain" => Key::Explain,
            _ => return Err(off()),
        })
    }
}

impl<'de> DeserializeSeed<'de> for KeyVisitor {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

/// Sets a field once: a field given twice is refused by serde on the general path.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(off());
    }
    *slot = Some(value);
    Ok(())
}

struct Request<'rs>(&'rs Compiled);

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = (ResolvedEligibility, Date);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = (ResolvedEligibility, Date);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an eligibility request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let rs = self.0;
        let mut treatment = None;
        let mut date = None;
        let mut facts = None;
        let mut history = None;
        let mut zones = None;
        let mut device = None;
        let mut role = None;
        let mut indication = None;
        let (mut version, mut digest, mut explain) = (None, None, None);
        while let Some(key) = map.next_key_seed(KeyVisitor)? {
            match key {
                Key::Treatment => once(&mut treatment, map.next_value_seed(Name(&rs.treatments))?)?,
                Key::Date => once(&mut date, map.next_value_seed(StrictDate)?)?,
                Key::Facts => once(&mut facts, map.next_value_seed(Facts(rs))?)?,
                Key::History => once(&mut history, map.next_value_seed(History(rs))?)?,
                Key::Zones => once(&mut zones, map.next_value_seed(Opt(NameList(&rs.zones)))?)?,
                Key::Device => once(&mut device, map.next_value_seed(Opt(Name(&rs.devices)))?)?,
                Key::Role => once(&mut role, map.next_value_seed(Opt(Name(&rs.roles)))?)?,
                Key::Indication => once(
                    &mut indication,
                    map.next_value_seed(Opt(Name(&rs.indications)))?,
                )?,
                Key::Version => once(&mut version, map.next_value_seed(Null)?)?,
                Key::Digest => once(&mut digest, map.next_value_seed(Null)?)?,
                Key::Explain => once(&mut explain, map.next_value_seed(NoExplain)?)?,
            }
        }
        let (Some(treatment), Some(date), Some(history)) = (treatment, date, history) else {
            return Err(off());
        };
        let facts = facts.unwrap_or_else(|| FactValues(vec![FactVal::Unknown; rs.facts.len()]));
        let resolved = ResolvedEligibility {
            treatment,
            facts,
            history,
            device: device.flatten(),
            zones: zones.flatten(),
            indication: indication.flatten(),
        };
        checked(rs, resolved, role.flatten(), date).ok_or_else(off)
    }
}

/// A name of one of the rule set's tables, resolved to its index.
struct Name<'rs>(&'rs Names);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = Ix;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Ix, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Name<'_> {
    type Value = Ix;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a declared id")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ix, E> {
        self.0.get(v).ok_or_else(off)
    }
}

/// A list of names (zones), resolved.
struct NameList<'rs>(&'rs Names);

impl<'de> DeserializeSeed<'de> for NameList<'_> {
    type Value = Vec<Ix>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Ix>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for NameList<'_> {
    type Value = Vec<Ix>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of declared ids")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Ix>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(16));
        while let Some(ix) = seq.next_element_seed(Name(self.0))? {
            out.push(ix);
        }
        Ok(out)
    }
}

/// An optional value: `null` is absent, as serde reads an `Option` field.
struct Opt<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Opt<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Opt<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// `null` only: a pinned version is resolved by the server on the general path.
struct Null;

impl<'de> DeserializeSeed<'de> for Null {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Null {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// `explain: false` only: an explanation is made on the general path.
struct NoExplain;

impl<'de> DeserializeSeed<'de> for NoExplain {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_bool(self)
    }
}

impl Visitor<'_> for NoExplain {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        if v { Err(off()) } else { Ok(()) }
    }
}

/// A strict `YYYY-MM-DD` date ([`parse_strict_date`]).
struct StrictDate;

impl<'de> DeserializeSeed<'de> for StrictDate {
    type Value = Date;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Date, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StrictDate {
    type Value = Date;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date in the form YYYY-MM-DD")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Date, E> {
        parse_strict_date(v).map_err(|_| off())
    }
}

/// The facts object, into slots by fact index; each fact id once.
struct Facts<'rs>(&'rs Compiled);

impl<'de> DeserializeSeed<'de> for Facts<'_> {
    type Value = FactValues;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FactValues, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Facts<'_> {
    type Value = FactValues;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of answers by fact id")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FactValues, A::Error> {
        let rs = self.0;
        let mut values = vec![FactVal::Unknown; rs.facts.len()];
        let mut seen = FactSet::default();
        while let Some(ix) = map.next_key_seed(Name(&rs.facts))? {
            if seen.contains(ix) {
                // Given twice: refused (the general path names `facts.<id>`).
                return Err(off());
            }
            seen.insert(ix);
            let kind = &rs.fact_defs.get(usize::from(ix)).ok_or_else(off)?.kind;
            let value = map.next_value_seed(Answer { rs, kind })?;
            let slot = values.get_mut(usize::from(ix)).ok_or_else(off)?;
            *slot = value;
        }
        Ok(FactValues(values))
    }
}

/// One answer, checked against its fact's declaration exactly as `intake::parse_facts` checks
/// the JSON value the general path holds.
struct Answer<'rs> {
    rs: &'rs Compiled,
    kind: &'rs FactKind,
}

impl<'de> DeserializeSeed<'de> for Answer<'_> {
    type Value = FactVal;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FactVal, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Answer<'_> {
    type Value = FactVal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an answer")
    }

    fn visit_unit<E: de::Error>(self) -> Result<FactVal, E> {
        match self.kind {
            FactKind::Date {
                null_means: Some(_),
            } => Ok(FactVal::Never),
            _ => Err(off()),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FactVal, E> {
        match self.kind {
            FactKind::Bool => Ok(FactVal::Bool(v)),
            _ => Err(off()),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FactVal, E> {
        match self.kind {
            FactKind::Integer { min, max } if (*min..=*max).contains(&v) => Ok(FactVal::Int(v)),
            _ => Err(off()),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FactVal, E> {
        self.visit_i64(i64::try_from(v).map_err(|_| off())?)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FactVal, E> {
        match self.kind {
            FactKind::Enum { values } => values
                .iter()
                .position(|x| **x == *v)
                .and_then(|i| u8::try_from(i).ok())
                .map(FactVal::Enum)
                .ok_or_else(off),
            FactKind::Date { .. } => match parse_strict_date(v) {
                Ok(d) if within_horizon(self.rs, d).is_ok() => Ok(FactVal::Date(d)),
                _ => Err(off()),
            },
            _ => Err(off()),
        }
    }
}

/// The history, procedures resolved to their index, each date within the horizon.
struct History<'rs>(&'rs Compiled);

impl<'de> DeserializeSeed<'de> for History<'_> {
    type Value = Vec<(Ix, Date)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for History<'_> {
    type Value = Vec<(Ix, Date)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of past procedures")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(16));
        while let Some(entry) = seq.next_element_seed(Entry(self.0))? {
            out.push(entry);
        }
        Ok(out)
    }
}

/// One past procedure: `{"procedure": ..., "date": ...}`, nothing else.
struct Entry<'rs>(&'rs Compiled);

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = (Ix, Date);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        // As a struct, as serde reads `HistoryEntry`: an object, or a list of its fields.
        d.deserialize_struct("HistoryEntry", &["procedure", "date"], self)
    }
}

struct EntryKey;

impl<'de> DeserializeSeed<'de> for EntryKey {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for EntryKey {
    /// `true` for `procedure`, `false` for `date`.
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`procedure` or `date`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v {
            "procedure" => Ok(true),
            "date" => Ok(false),
            _ => Err(off()),
        }
    }
}

impl<'de> Visitor<'de> for Entry<'_> {
    type Value = (Ix, Date);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a past procedure")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut procedure, mut date) = (None, None);
        while let Some(is_procedure) = map.next_key_seed(EntryKey)? {
            if is_procedure {
                once(
                    &mut procedure,
                    map.next_value_seed(Name(&self.0.procedures))?,
                )?;
            } else {
                once(&mut date, map.next_value_seed(StrictDate)?)?;
            }
        }
        match (procedure, date) {
            (Some(p), Some(d)) if within_horizon(self.0, d).is_ok() => Ok((p, d)),
            _ => Err(off()),
        }
    }

    /// `["ipl", "2026-09-15"]`: serde reads a struct from a list of its fields in order, so the
    /// general path answers it, and so does this read.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let procedure = seq.next_element_seed(Name(&self.0.procedures))?;
        let date = seq.next_element_seed(StrictDate)?;
        match (procedure, date) {
            (Some(p), Some(d)) if within_horizon(self.0, d).is_ok() => Ok((p, d)),
            _ => Err(off()),
        }
    }
}

/// One answer as an adapter without JSON holds it (gRPC's `google.protobuf.Value`), borrowed.
#[derive(Debug, Clone, Copy)]
pub enum AnswerRef<'a> {
    /// `null`: "never", for a date fact that declares what it means.
    Null,
    /// A yes or no.
    Bool(bool),
    /// A number; protobuf has only doubles, so a whole number within ±2^53 is read as the
    /// integer a JSON client would send, anything else is not an answer.
    Number(f64),
    /// A string: an enum value or a date.
    Text(&'a str),
    /// Anything else (a list, an object, a value with no kind): never an answer.
    Other,
}

/// The fields of an eligibility request that an adapter has already decoded (gRPC), to be read
/// into a rule set's slots as a JSON body is. Explanations and pinned versions stay on the
/// general path, so they are not fields here.
#[derive(Debug, Clone)]
pub struct EligibilityParts<'a, F, H> {
    /// The treatment id.
    pub treatment: &'a str,
    /// The date, `YYYY-MM-DD`.
    pub date: &'a str,
    /// The answers by fact id, each id once (the adapter refuses a repeated one).
    pub facts: F,
    /// Past procedures as (procedure id, `YYYY-MM-DD`).
    pub history: H,
    /// The zones, when given.
    pub zones: Option<&'a [String]>,
    /// The device, when given.
    pub device: Option<&'a str>,
    /// The role, when given.
    pub role: Option<&'a str>,
    /// The indication, when given.
    pub indication: Option<&'a str>,
}

type Off = de::value::Error;

/// Reads decoded request fields, or `None` when the general path must (as [`eligibility`]).
pub(crate) fn eligibility_parts<'a, F, H>(
    rs: &Compiled,
    parts: EligibilityParts<'a, F, H>,
) -> Option<(ResolvedEligibility, Date)>
where
    F: IntoIterator<Item = (&'a str, AnswerRef<'a>)>,
    H: IntoIterator<Item = (&'a str, &'a str)>,
{
    let treatment = Name(&rs.treatments)
        .visit_str::<Off>(parts.treatment)
        .ok()?;
    let date = StrictDate.visit_str::<Off>(parts.date).ok()?;
    let mut values = vec![FactVal::Unknown; rs.facts.len()];
    let mut seen = FactSet::default();
    for (id, answer) in parts.facts {
        let ix = Name(&rs.facts).visit_str::<Off>(id).ok()?;
        if seen.contains(ix) {
            return None;
        }
        seen.insert(ix);
        let kind = &rs.fact_defs.get(usize::from(ix))?.kind;
        let a = Answer { rs, kind };
        let value = match answer {
            AnswerRef::Null => a.visit_unit::<Off>(),
            AnswerRef::Bool(b) => a.visit_bool::<Off>(b),
            AnswerRef::Number(n) => a.visit_i64::<Off>(crate::wire::whole_number(n)?),
            AnswerRef::Text(s) => a.visit_str::<Off>(s),
            AnswerRef::Other => return None,
        }
        .ok()?;
        *values.get_mut(usize::from(ix))? = value;
    }
    let mut history = Vec::new();
    for (procedure, on) in parts.history {
        let p = Name(&rs.procedures).visit_str::<Off>(procedure).ok()?;
        let d = StrictDate.visit_str::<Off>(on).ok()?;
        within_horizon(rs, d).ok()?;
        history.push((p, d));
    }
    let zones = match parts.zones {
        Some(list) => Some(
            list.iter()
                .map(|z| Name(&rs.zones).visit_str::<Off>(z).ok())
                .collect::<Option<Vec<Ix>>>()?,
        ),
        None => None,
    };
    let lookup = |names: &Names, id: Option<&str>| match id {
        Some(id) => Name(names).visit_str::<Off>(id).ok().map(Some),
        None => Some(None),
    };
    let device = lookup(&rs.devices, parts.device)?;
    let role = lookup(&rs.roles, parts.role)?;
    let indication = lookup(&rs.indications, parts.indication)?;
    checked(
        rs,
        ResolvedEligibility {
            treatment,
            facts: FactValues(values),
            history,
            device,
            zones,
            indication,
        },
        role,
        date,
    )
}

/// The checks of a request as a whole, once every field is read: the date within the horizon,
/// the role and device for the treatment, the zones named once each and reachable.
fn checked(
    rs: &Compiled,
    resolved: ResolvedEligibility,
    role: Option<Ix>,
    date: Date,
) -> Option<(ResolvedEligibility, Date)> {
    within_horizon(rs, date).ok()?;
    let mut faults = Violations::default();
    check_role_device(rs, resolved.treatment, role, resolved.device, &mut faults);
    if !faults.is_empty() {
        return None;
    }
    if let Some(zones) = &resolved.zones {
        let def = rs.treatment_defs.get(usize::from(resolved.treatment));
        let fine = !zones.is_empty()
            && zones.iter().enumerate().all(|(i, z)| {
                !zones[..i].contains(z) && def.is_some_and(|d| zone_reachable(d, *z))
            });
        if !fine {
            return None;
        }
    }
    Some((resolved, date))
}
