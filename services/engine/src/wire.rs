//! Strict reading of request values, shared by every adapter so that there is one rule per value:
//!
//! - a date is exactly `YYYY-MM-DD` ([`parse_strict_date`]): jiff alone would also take
//!   `20261201` and `2026-12-01T10:00` (dropping the time), which the contract does not allow;
//! - facts carry each fact id once (`unique_facts`): a JSON object with a key twice is last-wins
//!   for serde, and a conflicting answer about health must be refused, not guessed at;
//! - a QuestionnaireResponse repeats no key in any of its objects (`unique_json_opt`, and
//!   [`parse_unique_json`] for the gRPC adapter, which receives it as JSON text): an item with
//!   `answer` twice would otherwise be read last-wins too;
//! - a protobuf double is a whole number only when it is whole and within ±2^53
//!   ([`whole_number`]), where the cast to `i64` is exact.
//!
//! The serde helpers are used as `#[serde(deserialize_with = "...")]` on the request types of
//! the engine (`EligibilityRequest`, ...); the gRPC adapter calls [`parse_strict_date`] itself. Errors raised while
//! deserializing a value name that value's path (`date`, `history[0].date`, `facts.pregnant`).

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// The answers map, [`crate::Facts`], spelled out so that this module imports nothing from
/// the request types it serves (they use it; it does not use them). The request fields that name
/// these helpers would not compile if the two drifted apart.
type Facts = BTreeMap<String, serde_json::Value>;

/// The whole number a protobuf double stands for (gRPC carries every JSON number as a double):
/// `Some` only when it is whole and within ±2^53, so the cast is exact. The gRPC adapter's
/// general path and the engine's read of gRPC facts both ask here, so they read a number alike.
pub fn whole_number(n: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (n.fract() == 0.0 && n.abs() < EXACT).then_some(n as i64)
}

/// The earliest year a date of a request may have.
pub const MIN_YEAR: i16 = 1900;

/// Parses a calendar date written exactly as `YYYY-MM-DD` (four-digit year, two-digit month and
/// day), and a real one (no 30 February). Anything else is refused with a message for the caller.
pub fn parse_strict_date(text: &str) -> Result<Date, String> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!(
            "{} is not a date in the form YYYY-MM-DD",
            quoted(text)
        ));
    }
    // Shaped as YYYY-MM-DD, so every part is ASCII digits: the numbers parse.
    let part = |r: std::ops::Range<usize>| text.get(r).and_then(|p| p.parse::<i16>().ok());
    let (Some(year), Some(month), Some(day)) = (part(0..4), part(5..7), part(8..10)) else {
        return Err(format!(
            "{} is not a date in the form YYYY-MM-DD",
            quoted(text)
        ));
    };
    let (Ok(month), Ok(day)) = (i8::try_from(month), i8::try_from(day)) else {
        return Err(format!(
            "{} is not a date in the form YYYY-MM-DD",
            quoted(text)
        ));
    };
    if !(1..=12).contains(&month) {
        return Err(format!(
            "{} is not a real calendar date: the month must be 01 to 12 (YYYY-MM-DD)",
            quoted(text)
        ));
    }
    // No birth, procedure or session this service is asked about is that old: `0000-01-01` as
    // a date of birth would clear every age rule.
    if year < MIN_YEAR {
        return Err(format!(
            "{} is before {MIN_YEAR}: not a plausible date of a birth, a procedure or a session",
            quoted(text)
        ));
    }
    Date::new(year, month, day).map_err(|_| {
        let days = Date::new(year, month, 1)
            .map(|first| first.days_in_month())
            .unwrap_or(31);
        format!(
            "{} is not a real calendar date: {year:04}-{month:02} has days 01 to {days} (YYYY-MM-DD)",
            quoted(text)
        )
    })
}

/// User input in quotes, clipped: messages echo what was sent, not a whole body.
fn quoted(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("'{}…'", &text[..end]),
        None => format!("'{text}'"),
    }
}

struct StrictDate;

impl Visitor<'_> for StrictDate {
    type Value = Date;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a date in the form YYYY-MM-DD")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Date, E> {
        parse_strict_date(v).map_err(E::custom)
    }
}

/// `deserialize_with` for a `Date` field: [`parse_strict_date`].
pub(crate) fn strict_date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    d.deserialize_str(StrictDate)
}

/// `deserialize_with` for an optional `Date` field (with `#[serde(default)]`): `null` is absent.
pub(crate) fn strict_date_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Date>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date in the form YYYY-MM-DD, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            strict_date(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// `deserialize_with` for a [`Facts`] field: a map in which a fact id given twice (even with the
/// same answer) is an error at `facts.<id>`.
pub fn unique_facts<'de, D: Deserializer<'de>>(d: D) -> Result<Facts, D::Error> {
    d.deserialize_map(UniqueFacts)
}

/// `deserialize_with` for an optional [`Facts`] field (with `#[serde(default)]`): `null` is absent.
pub(crate) fn unique_facts_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Facts>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<Facts>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of facts, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            unique_facts(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

struct UniqueFacts;

impl<'de> Visitor<'de> for UniqueFacts {
    type Value = Facts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of answers by fact id")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Facts, A::Error> {
        let mut facts = Facts::new();
        while let Some(id) = map.next_key::<String>()? {
            if facts.contains_key(&id) {
                // Refused while reading the value, so that path-tracking deserializers (the REST
                // adapter's) name `facts.<id>`, not `facts`.
                return map.next_value_seed(Repeated);
            }
            let value = map.next_value()?;
            facts.insert(id, value);
        }
        Ok(facts)
    }
}

/// The value of a fact given a second time: never read, always refused.
struct Repeated;

impl<'de> DeserializeSeed<'de> for Repeated {
    type Value = Facts;

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<Facts, D::Error> {
        Err(de::Error::custom(
            "this fact is given more than once: send each fact once",
        ))
    }
}

/// `deserialize_with` for an optional JSON value (with `#[serde(default)]`) in which no object,
/// at any depth, gives a key twice; `null` is absent.
pub(crate) fn unique_json_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    <Option<UniqueJson> as serde::Deserialize>::deserialize(d).map(|v| v.map(|u| u.0))
}

/// Parses JSON text in which no object, at any depth, gives a key twice (the gRPC form of a
/// QuestionnaireResponse), read by the same strict check as every JSON body ([`check_json`]).
/// The error names the place (`item[0].answer`) and what is wrong.
pub fn parse_unique_json(text: &str) -> Result<serde_json::Value, String> {
    check_json(text.as_bytes(), MAX_JSON_VALUES).map_err(|(path, message)| {
        if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        }
    })?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The most JSON values (objects, arrays, strings, numbers, booleans, nulls) one body may hold,
/// an object counting [`OBJECT_WEIGHT`] times: a 4 MiB hook call of `{"a":0}`s would otherwise
/// be read into a tree a hundred times its size (an object is a map node of some 650 bytes).
pub const MAX_JSON_VALUES: usize = 200_000;

/// What one object counts against [`MAX_JSON_VALUES`]: so a body holds at most 25,000 objects.
pub const OBJECT_WEIGHT: usize = 8;

/// The strict reading every JSON door applies before it reads a body into its types: no object,
/// at any depth, gives a key twice (serde would keep the last, silently), and the body holds at
/// most `max_values` values. Values are checked, not kept. A malformed body passes (the typed
/// read names its fault). The error is `(path, message)`, the path as the typed read names
/// fields (`prefetch.intake.item[0].answer`).
pub fn check_json(bytes: &[u8], max_values: usize) -> Result<(), (String, String)> {
    let budget = std::cell::Cell::new(max_values);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match Check(&budget).deserialize(&mut de) {
        Ok(()) => return Ok(()),
        Err(e) if !e.is_data() => return Ok(()),
        Err(_) => {}
    }
    // Again, tracking where: only a body at fault pays for the path.
    let budget = std::cell::Cell::new(max_values);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut track = serde_path_to_error::Track::new();
    let result =
        Check(&budget).deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
    match result {
        Err(e) => {
            let path = track.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_owned();
            Err((path, message))
        }
        Ok(()) => Ok(()),
    }
}

/// One value of [`check_json`], checked and dropped, against the body's value budget.
struct Check<'b>(&'b std::cell::Cell<usize>);

impl Check<'_> {
    /// Takes `n` from the budget, or refuses the body.
    fn spend<E: de::Error>(&self, n: usize) -> Result<(), E> {
        let left = self.0.get();
        if left < n {
            return Err(E::custom(format!(
                "the body holds more than {MAX_JSON_VALUES} JSON values (an object counts \
                 {OBJECT_WEIGHT})"
            )));
        }
        self.0.set(left - n);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.spend(1)?;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Check(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The object's own value was counted once already.
        self.spend(OBJECT_WEIGHT - 1)?;
        // Keys borrowed from the body where they can be (no escapes); a few compared in a list,
        // more in a set: most objects have a handful of keys, and this runs before every read.
        let mut few: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        let mut many: Option<
            std::collections::HashSet<std::borrow::Cow<'de, str>, foldhash::fast::FixedState>,
        > = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let repeated = match &mut many {
                Some(set) => !set.insert(key),
                None if few.contains(&key) => true,
                None if few.len() < 16 => {
                    few.push(key);
                    false
                }
                None => {
                    let mut set: std::collections::HashSet<_, _> =
                        std::mem::take(&mut few).into_iter().collect();
                    let fresh = set.insert(key);
                    many = Some(set);
                    !fresh
                }
            };
            if repeated {
                map.next_value_seed(RepeatedKey)?;
                return Ok(());
            }
            map.next_value_seed(Check(self.0))?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body when it holds no escape.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A JSON value read with every object's keys checked for repeats.
struct UniqueJson(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueJsonVisitor)
    }
}

struct UniqueJsonVisitor;

impl<'de> Visitor<'de> for UniqueJsonVisitor {
    type Value = UniqueJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<UniqueJson, E> {
        Ok(UniqueJson(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<UniqueJson, E> {
        Ok(UniqueJson(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<UniqueJson, E> {
        Ok(UniqueJson(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<UniqueJson, E> {
        serde_json::Number::from_f64(v)
            .map(|n| UniqueJson(serde_json::Value::Number(n)))
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<UniqueJson, E> {
        Ok(UniqueJson(v.into()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<UniqueJson, E> {
        Ok(UniqueJson(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<UniqueJson, E> {
        Ok(UniqueJson(serde_json::Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<UniqueJson, E> {
        Ok(UniqueJson(serde_json::Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UniqueJson, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueJson, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueJson(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(UniqueJson(serde_json::Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueJson, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                // Refused while reading the value, so that path-tracking deserializers name the
                // repeated key itself.
                return map.next_value_seed(RepeatedKey);
            }
            let UniqueJson(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(UniqueJson(serde_json::Value::Object(out)))
    }
}

/// The value of a key given a second time in one object: never read, always refused.
struct RepeatedKey;

impl<'de> DeserializeSeed<'de> for RepeatedKey {
    type Value = UniqueJson;

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<UniqueJson, D::Error> {
        Err(de::Error::custom(
            "this key is given more than once in its object: send each key once",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strict_check_names_a_repeated_key_anywhere_and_bounds_the_values() {
        assert_eq!(
            check_json(br#"{"a": [1, {"b": 2}], "c": null}"#, 100),
            Ok(())
        );
        let (path, message) = check_json(
            br#"{"prefetch": {"intake": {"item": [{"linkId": "x", "linkId": "y"}]}}}"#,
            100,
        )
        .expect_err("refused");
        assert_eq!(path, "prefetch.intake.item[0].linkId");
        assert!(message.contains("more than once"), "{message}");
        assert!(check_json(br#"{"a": 1, "a": 1}"#, 100).is_err());
        // 1 for the array and 99 scalars: exactly the budget; one more is over it.
        let scalars = |n| format!("[{}]", vec!["0"; n].join(","));
        assert!(check_json(scalars(99).as_bytes(), 100).is_ok());
        assert!(check_json(scalars(100).as_bytes(), 100).is_err());
        // An object counts OBJECT_WEIGHT: 1 + 12 × 8 = 97 fits in 100, 13 objects do not.
        let objects = |n| format!("[{}]", vec!["{}"; n].join(","));
        assert!(check_json(objects(12).as_bytes(), 100).is_ok());
        let (_, message) = check_json(objects(13).as_bytes(), 100).expect_err("over budget");
        assert!(message.contains("more than"), "{message}");
        // Malformed: left to the typed read, which names the fault.
        assert_eq!(check_json(b"{\"a\": ", 100), Ok(()));
    }
    use crate::api::{
        ContraindicationRequest, DepthLimitsRequest, EligibilityRequest, HistoryEntry, PlanRequest,
    };

    #[test]
    fn a_double_is_a_whole_number_only_when_the_cast_is_exact() {
        assert_eq!(whole_number(3.0), Some(3));
        assert_eq!(
            whole_number(-9_007_199_254_740_991.0),
            Some(-9_007_199_254_740_991)
        );
        assert_eq!(whole_number(3.5), None);
        assert_eq!(whole_number(9_007_199_254_740_992.0), None);
        assert_eq!(whole_number(f64::NAN), None);
        assert_eq!(whole_number(f64::INFINITY), None);
    }

    #[test]
    fn a_key_repeated_at_any_depth_is_refused_naming_it() {
        let ok =
            parse_unique_json(r#"{"item": [{"linkId": "a", "answer": [{"valueInteger": 3}]}]}"#);
        assert_eq!(
            ok.expect("valid")["item"][0]["answer"][0]["valueInteger"],
            3
        );
        let e = parse_unique_json(r#"{"item": [{"linkId": "a", "linkId": "b"}]}"#)
            .expect_err("repeated");
        assert!(
            e.starts_with("item[0].linkId: this key is given more than once"),
            "{e}"
        );
        assert!(parse_unique_json(r#"{"a": 1} trailing"#).is_err());
    }

    #[test]
    fn dates_are_exactly_yyyy_mm_dd() {
        assert_eq!(
            parse_strict_date("2026-12-01"),
            Ok(jiff::civil::date(2026, 12, 1))
        );
        for bad in [
            "20261201",
            "2026-12-01T10:00",
            "2026-12-01T10:00:00Z",
            "2026-12-01 ",
            " 2026-12-01",
            "2026-12-1",
            "+002026-12-01",
            "-2026-12-01",
            "2026/12/01",
            "٢٠٢٦-١٢-٠١",
            "",
        ] {
            let e = parse_strict_date(bad).expect_err(bad);
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
        for impossible in [
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-01-00",
        ] {
            let e = parse_strict_date(impossible).expect_err(impossible);
            assert!(
                e.contains("is not a real calendar date"),
                "{impossible}: {e}"
            );
            assert!(e.contains("YYYY-MM-DD"), "{impossible}: {e}");
            // Never the parser's own wording.
            assert!(
                !e.contains("parse") && !e.contains("integer"),
                "{impossible}: {e}"
            );
        }
        assert_eq!(
            parse_strict_date("2026-13-01").expect_err("month 13"),
            "'2026-13-01' is not a real calendar date: the month must be 01 to 12 (YYYY-MM-DD)"
        );
        assert_eq!(
            parse_strict_date("2026-02-30").expect_err("30 February"),
            "'2026-02-30' is not a real calendar date: 2026-02 has days 01 to 28 (YYYY-MM-DD)"
        );
        assert_eq!(
            parse_strict_date("2028-02-29"),
            Ok(jiff::civil::date(2028, 2, 29))
        );
        let long = "9".repeat(500);
        assert!(parse_strict_date(&long).expect_err("long").len() < 100);
    }

    /// The REST path of an error, as the server's extractor reports it.
    fn error_path<T: serde::de::DeserializeOwned + fmt::Debug>(json: &str) -> String {
        let mut de = serde_json::Deserializer::from_str(json);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(v) => panic!("accepted {json}: {v:?}"),
            Err(e) => e.path().to_string(),
        }
    }

    #[test]
    fn a_fact_given_twice_is_refused_naming_it() {
        let twice = r#"{"pregnant": true, "fitzpatrick": 2, "pregnant": false}"#;
        let same_twice = r#"{"pregnant": false, "pregnant": false}"#;
        for facts in [twice, same_twice] {
            let e = serde_json::from_str::<EligibilityRequest>(&format!(
                r#"{{"treatment":"m","date":"2026-12-01","history":[],"facts":{facts}}}"#
            ))
            .expect_err("duplicate refused");
            assert!(e.to_string().contains("more than once"), "{e}");
        }
        let eligibility =
            format!(r#"{{"treatment":"m","date":"2026-12-01","history":[],"facts":{twice}}}"#);
        assert_eq!(
            error_path::<EligibilityRequest>(&eligibility),
            "facts.pregnant"
        );
        assert_eq!(
            error_path::<ContraindicationRequest>(&format!(r#"{{"facts":{twice}}}"#)),
            "facts.pregnant"
        );
        assert_eq!(
            error_path::<DepthLimitsRequest>(&format!(
                r#"{{"treatment":"m","device":"d","role":"r","facts":{twice}}}"#
            )),
            "facts.pregnant"
        );
        assert_eq!(
            error_path::<PlanRequest>(&format!(
                r#"{{"indication":"i","zones":[],"history":[],"start_date":"2026-12-01","role":"r","facts":{twice}}}"#
            )),
            "facts.pregnant"
        );
        assert_eq!(
            error_path::<Vec<EligibilityRequest>>(&format!("[{eligibility}]")),
            "[0].facts.pregnant"
        );

        // Each fact once: read as sent; absent or null optional facts are absent.
        let once: EligibilityRequest = serde_json::from_str(
            r#"{"treatment":"m","date":"2026-12-01","history":[],"facts":{"pregnant":false,"isotretinoin_last_dose":null}}"#,
        )
        .expect("valid");
        assert_eq!(once.facts.len(), 2);
        assert_eq!(once.facts["pregnant"], serde_json::json!(false));
        let none: DepthLimitsRequest =
            serde_json::from_str(r#"{"treatment":"m","device":"d","role":"r","facts":null}"#)
                .expect("valid");
        assert_eq!(none.facts, None);
        let empty: DepthLimitsRequest =
            serde_json::from_str(r#"{"treatment":"m","device":"d","role":"r","facts":{}}"#)
                .expect("valid");
        assert_eq!(empty.facts, Some(Facts::new()));
    }

    #[test]
    fn every_request_date_is_strict() {
        assert_eq!(
            error_path::<EligibilityRequest>(r#"{"treatment":"m","date":"20261201","history":[]}"#),
            "date"
        );
        assert_eq!(
            error_path::<HistoryEntry>(r#"{"procedure":"ipl","date":"2026-12-01T10:00"}"#),
            "date"
        );
        assert_eq!(
            error_path::<EligibilityRequest>(
                r#"{"treatment":"m","date":"2026-12-01","history":[{"procedure":"ipl","date":"20261201"}]}"#
            ),
            "history[0].date"
        );
        assert_eq!(
            error_path::<ContraindicationRequest>(r#"{"date":"2026-12-01T00:00"}"#),
            "date"
        );
        assert_eq!(
            error_path::<PlanRequest>(
                r#"{"indication":"i","zones":[],"history":[],"start_date":"20261201","role":"r"}"#
            ),
            "start_date"
        );
        let c: ContraindicationRequest =
            serde_json::from_str(r#"{"date":null}"#).expect("null date is absent");
        assert_eq!(c.date, None);
        let c: ContraindicationRequest =
            serde_json::from_str(r#"{"date":"2026-12-01"}"#).expect("valid");
        assert_eq!(c.date, Some(jiff::civil::date(2026, 12, 1)));
    }
}

/// The strict check over generated JSON: any document without a repeated key passes, and the
/// same document with one key of one object written twice (at any depth) is refused, naming
/// that key's path as the typed reads name fields.
#[cfg(test)]
mod strict_check_property {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{MAX_JSON_VALUES, check_json};

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|i| Value::from(i64::from(i))),
            "[a-z ]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `v` as JSON text; the `dup`-th non-empty object (pre-order) writes its first key twice.
    /// Returns the repeated key's path when one was written.
    fn write(v: &Value, path: &str, dup: &mut Option<usize>, out: &mut String) -> Option<String> {
        match v {
            Value::Array(items) => {
                out.push('[');
                let mut found = None;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    found = found.or(write(item, &format!("{path}[{i}]"), dup, out));
                }
                out.push(']');
                found
            }
            Value::Object(map) if !map.is_empty() => {
                let here = match dup {
                    Some(0) => {
                        *dup = None;
                        true
                    }
                    Some(n) => {
                        *n -= 1;
                        false
                    }
                    None => false,
                };
                let key_path = |k: &str| {
                    if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    }
                };
                out.push('{');
                let mut found = None;
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("{}:", Value::String(k.clone())));
                    found = found.or(write(item, &key_path(k), dup, out));
                }
                if here && let Some((k, item)) = map.iter().next() {
                    out.push_str(&format!(",{}:{item}", Value::String(k.clone())));
                    found = Some(key_path(k));
                }
                out.push('}');
                found
            }
            other => {
                out.push_str(&other.to_string());
                None
            }
        }
    }

    proptest! {
        #[test]
        fn a_key_written_twice_anywhere_is_refused_at_its_path(v in json(), pick in 0usize..8) {
            let mut clean = String::new();
            write(&v, "", &mut None, &mut clean);
            prop_assert_eq!(check_json(clean.as_bytes(), MAX_JSON_VALUES), Ok(()));
            let mut doubled = String::new();
            if let Some(path) = write(&v, "", &mut Some(pick), &mut doubled) {
                let (at, message) = check_json(doubled.as_bytes(), MAX_JSON_VALUES)
                    .expect_err("a repeated key is refused");
                prop_assert_eq!(at, path);
                prop_assert!(message.contains("more than once"), "{}", message);
            }
        }
    }
}
