//! Fact ids given twice in a request's `google.protobuf.Struct` facts, found in the encoded bytes.
//!
//! A `map<string, Value>` (the Struct's `fields`) is on the wire a `repeated` entry message
//! (`key = 1`, `value = 2`), and an embedded message field given twice is merged: prost, like every
//! protobuf runtime, collapses both into one map, last entry wins. So `{"pregnant": true}` and then
//! `{"pregnant": false}` would silently read as "not pregnant". Once decoded, the duplicate is gone;
//! it can only be seen in the bytes.
//!
//! The codec ([`super::codec`]) therefore decodes a request carrying facts as usual with prost
//! (which validates the whole encoding) and then walks the same bytes once more, without
//! decoding anything but field keys and lengths: the request's `facts` fields (every occurrence,
//! as prost merges them), in each the Struct's entries, in each entry its key (the last one, as
//! prost does; none is the empty key). Keys are borrowed slices of the buffer, collected in one
//! small vector per facts Struct, sorted and compared. The cost is one pass over the message's
//! bytes with no allocation but that vector, and only for the five request types that carry
//! facts; every other message goes straight to prost. Measured on a fully answered eligibility
//! request (722 bytes, 29 facts; optimised build, this 2-core machine): prost's decode 3.4 µs,
//! this walk 0.6 µs. A second prost message with `repeated` entries decoded from the same bytes would give
//! the same answer, but would allocate a `String` per fact and a message per entry to do it.

use std::any::TypeId;

use protocol_engine::FieldViolation;

use super::pb;

/// Where a request message keeps its facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsAt {
    /// In field `facts` (a `google.protobuf.Struct`) of the message itself.
    Field { facts: u32 },
    /// In field `facts` of each message of the repeated field `list`, named `name[i]`.
    Each {
        list: u32,
        name: &'static str,
        facts: u32,
    },
}

/// The field numbers of `facts` in the request messages of `protocol.proto` (checked against the
/// compiled descriptors by a test below). `None` for a message without facts.
pub fn facts_at<U: 'static>() -> Option<FactsAt> {
    let t = TypeId::of::<U>();
    if t == TypeId::of::<pb::CheckEligibilityRequest>() || t == TypeId::of::<pb::BuildPlanRequest>()
    {
        Some(FactsAt::Field { facts: 3 })
    } else if t == TypeId::of::<pb::CheckContraindicationsRequest>() {
        Some(FactsAt::Field { facts: 2 })
    } else if t == TypeId::of::<pb::GetDepthLimitsRequest>()
        || t == TypeId::of::<pb::WatchDepthLimitsRequest>()
    {
        Some(FactsAt::Field { facts: 6 })
    } else if t == TypeId::of::<pb::CheckEligibilityCalendarRequest>() {
        Some(FactsAt::Field { facts: 1 })
    } else if t == TypeId::of::<pb::CheckEligibilityBatchRequest>() {
        Some(FactsAt::Each {
            list: 1,
            name: "checks",
            facts: 3,
        })
    } else {
        None
    }
}

/// The encoding could not be walked (it decoded with prost, so this is not expected).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// Every fact id given more than once in `msg`, as a violation at `facts.<id>` (or
/// `checks[i].facts.<id>`).
pub fn duplicate_facts(msg: &[u8], at: FactsAt) -> Result<Vec<FieldViolation>, Malformed> {
    let mut out = Vec::new();
    match at {
        FactsAt::Field { facts } => repeated_keys(msg, facts, "", &mut out)?,
        FactsAt::Each { list, name, facts } => {
            let mut fields = Fields(msg);
            let mut i = 0usize;
            while let Some((number, value)) = fields.next()? {
                match value {
                    Value::Bytes(item) if number == list => {
                        repeated_keys(item, facts, &format!("{name}[{i}]."), &mut out)?;
                        i += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// Pushes a violation for each key given more than once over all the `facts` fields of `msg`.
fn repeated_keys(
    msg: &[u8],
    facts: u32,
    prefix: &str,
    out: &mut Vec<FieldViolation>,
) -> Result<(), Malformed> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut fields = Fields(msg);
    while let Some((number, value)) = fields.next()? {
        match value {
            Value::Bytes(s) if number == facts => struct_keys(s, &mut keys)?,
            _ => {}
        }
    }
    if keys.len() < 2 {
        return Ok(());
    }
    keys.sort_unstable();
    let mut last: Option<&[u8]> = None;
    for pair in keys.windows(2) {
        if pair[0] == pair[1] && last != Some(pair[0]) {
            last = Some(pair[0]);
            out.push(FieldViolation {
                field: format!("{prefix}facts.{}", String::from_utf8_lossy(pair[0])),
                message: "this fact is given more than once (a map key repeated in the Struct): \
                          send each fact once"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The keys of a `google.protobuf.Struct`'s entries (`fields = 1`, entry `key = 1`). An entry
/// that answers twice inside itself (its `value = 2` given twice, or one `Value` with two of its
/// kinds set: prost keeps the last of either) counts as its key given twice.
fn struct_keys<'a>(s: &'a [u8], keys: &mut Vec<&'a [u8]>) -> Result<(), Malformed> {
    let mut fields = Fields(s);
    while let Some((number, value)) = fields.next()? {
        let Value::Bytes(entry) = value else {
            continue;
        };
        if number != 1 {
            continue;
        }
        let mut key: &[u8] = b"";
        let mut answers = 0usize;
        let mut entry_fields = Fields(entry);
        while let Some((n, v)) = entry_fields.next()? {
            match (n, v) {
                (1, Value::Bytes(k)) => key = k,
                (2, Value::Bytes(value)) => answers += kinds(value)?.max(1),
                (2, Value::Other) => answers += 2,
                _ => {}
            }
        }
        keys.push(key);
        if answers > 1 {
            keys.push(key);
        }
    }
    Ok(())
}

/// How many kind fields (`null_value = 1` … `list_value = 6`) one `google.protobuf.Value` sets.
fn kinds(value: &[u8]) -> Result<usize, Malformed> {
    let mut n = 0;
    let mut fields = Fields(value);
    while let Some((number, _)) = fields.next()? {
        if (1..=6).contains(&number) {
            n += 1;
        }
    }
    Ok(n)
}

/// A field's payload: only length-delimited ones are looked into.
enum Value<'a> {
    Bytes(&'a [u8]),
    Other,
}

/// The fields of one encoded message, in order.
struct Fields<'a>(&'a [u8]);

/// Nesting allowed for (deprecated, proto2) groups in unknown fields; prost allows 100 levels of
/// recursion in all.
const MAX_GROUP_DEPTH: u32 = 100;

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Malformed> {
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        if n > self.0.len() {
            return Err(Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    /// The next field number and payload; `None` at the end.
    fn next(&mut self) -> Result<Option<(u32, Value<'a>)>, Malformed> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        let value = match key & 7 {
            0 => self.varint().map(|_| Value::Other)?,
            1 => self.take(8).map(|_| Value::Other)?,
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            3 => {
                self.skip_group(number, 1)?;
                Value::Other
            }
            5 => self.take(4).map(|_| Value::Other)?,
            _ => return Err(Malformed),
        };
        Ok(Some((number, value)))
    }

    /// Skips the fields of a group up to its end marker.
    fn skip_group(&mut self, number: u32, depth: u32) -> Result<(), Malformed> {
        if depth > MAX_GROUP_DEPTH {
            return Err(Malformed);
        }
        loop {
            if self.0.is_empty() {
                return Err(Malformed);
            }
            let key = self.varint()?;
            let n = u32::try_from(key >> 3).map_err(|_| Malformed)?;
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let len = self.varint()?;
                    self.take(len)?;
                }
                3 => self.skip_group(n, depth + 1)?,
                4 if n == number => return Ok(()),
                5 => {
                    self.take(4)?;
                }
                _ => return Err(Malformed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost::encoding::{WireType, encode_key, encode_varint};
    use prost_types::value::Kind;

    use super::*;

    fn one(key: &str, b: bool) -> prost_types::Struct {
        prost_types::Struct {
            fields: [(
                key.to_owned(),
                prost_types::Value {
                    kind: Some(Kind::BoolValue(b)),
                },
            )]
            .into(),
        }
    }

    fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(number, WireType::LengthDelimited, &mut out);
        encode_varint(bytes.len() as u64, &mut out);
        out.extend_from_slice(bytes);
        out
    }

    fn fields_of(v: Vec<FieldViolation>) -> Vec<String> {
        v.into_iter().map(|v| v.field).collect()
    }

    fn request(facts: Option<prost_types::Struct>) -> pb::CheckEligibilityRequest {
        pb::CheckEligibilityRequest {
            explain: false,
            ruleset_version: None,
            ruleset_digest: None,
            treatment: "microneedling".into(),
            date: "2026-12-01".into(),
            facts,
            questionnaire_response_json: None,
            ..Default::default()
        }
    }

    #[test]
    fn finds_a_key_repeated_in_one_struct_or_across_merged_fields() {
        let at = facts_at::<pb::CheckEligibilityRequest>().expect("has facts");
        // Each key once, over two merged facts fields: fine.
        let mut ok = request(Some(one("pregnant", false))).encode_to_vec();
        ok.extend(field(3, &one("sunburn", false).encode_to_vec()));
        assert_eq!(duplicate_facts(&ok, at), Ok(vec![]));
        assert!(pb::CheckEligibilityRequest::decode(ok.as_slice()).is_ok());

        // The same key in one Struct (two entries).
        let mut s = one("pregnant", true).encode_to_vec();
        s.extend(one("sunburn", false).encode_to_vec());
        s.extend(one("pregnant", false).encode_to_vec());
        let mut twice = request(None).encode_to_vec();
        twice.extend(field(3, &s));
        let decoded =
            pb::CheckEligibilityRequest::decode(twice.as_slice()).expect("prost accepts it");
        assert_eq!(decoded.facts.expect("facts").fields.len(), 2, "last wins");
        assert_eq!(
            fields_of(duplicate_facts(&twice, at).expect("walks")),
            ["facts.pregnant"]
        );

        // The same key across two facts fields, reported once however often it repeats.
        let mut merged = request(Some(one("pregnant", true))).encode_to_vec();
        merged.extend(field(3, &one("pregnant", false).encode_to_vec()));
        merged.extend(field(3, &one("pregnant", false).encode_to_vec()));
        assert_eq!(
            fields_of(duplicate_facts(&merged, at).expect("walks")),
            ["facts.pregnant"]
        );

        // An entry without a key is the empty key, as prost reads it.
        let mut empty_keys = request(None).encode_to_vec();
        empty_keys.extend(field(3, &[field(1, &[]), field(1, &[])].concat()));
        assert_eq!(
            fields_of(duplicate_facts(&empty_keys, at).expect("walks")),
            ["facts."]
        );
    }

    #[test]
    fn an_entry_answering_twice_inside_itself_is_a_repeat() {
        let at = facts_at::<pb::CheckEligibilityRequest>().expect("has facts");
        let b = |v: bool| {
            prost_types::Value {
                kind: Some(prost_types::value::Kind::BoolValue(v)),
            }
            .encode_to_vec()
        };
        // `value` given twice in one entry: prost keeps the second.
        let entry = [
            field(1, b"pregnant"),
            field(2, &b(true)),
            field(2, &b(false)),
        ]
        .concat();
        let mut two_values = request(None).encode_to_vec();
        two_values.extend(field(3, &field(1, &entry)));
        let decoded = pb::CheckEligibilityRequest::decode(two_values.as_slice()).expect("prost");
        assert_eq!(decoded.facts.expect("facts").fields.len(), 1, "last wins");
        assert_eq!(
            fields_of(duplicate_facts(&two_values, at).expect("walks")),
            ["facts.pregnant"]
        );
        // One Value with its kind set twice.
        let entry = [
            field(1, b"pregnant"),
            field(2, &[b(true), b(false)].concat()),
        ]
        .concat();
        let mut two_kinds = request(None).encode_to_vec();
        two_kinds.extend(field(3, &field(1, &entry)));
        assert_eq!(
            fields_of(duplicate_facts(&two_kinds, at).expect("walks")),
            ["facts.pregnant"]
        );
        // A single answer is fine.
        let entry = [field(1, b"pregnant"), field(2, &b(true))].concat();
        let mut once = request(None).encode_to_vec();
        once.extend(field(3, &field(1, &entry)));
        assert_eq!(duplicate_facts(&once, at), Ok(vec![]));
    }

    #[test]
    fn batches_name_the_check() {
        let at = facts_at::<pb::CheckEligibilityBatchRequest>().expect("has facts");
        let mut check = request(Some(one("pregnant", true))).encode_to_vec();
        check.extend(field(3, &one("pregnant", false).encode_to_vec()));
        let mut batch = pb::CheckEligibilityBatchRequest {
            checks: vec![request(Some(one("pregnant", true)))],
        }
        .encode_to_vec();
        batch.extend(field(1, &check));
        assert!(pb::CheckEligibilityBatchRequest::decode(batch.as_slice()).is_ok());
        assert_eq!(
            fields_of(duplicate_facts(&batch, at).expect("walks")),
            ["checks[1].facts.pregnant"]
        );
    }

    #[test]
    fn skips_unknown_fields_of_every_wire_type() {
        let at = facts_at::<pb::CheckEligibilityRequest>().expect("has facts");
        let mut msg = request(Some(one("pregnant", true))).encode_to_vec();
        // Unknown fields: varint, fixed64, fixed32, and a group holding a field.
        encode_key(90, WireType::Varint, &mut msg);
        encode_varint(300, &mut msg);
        encode_key(91, WireType::SixtyFourBit, &mut msg);
        msg.extend([0; 8]);
        encode_key(92, WireType::ThirtyTwoBit, &mut msg);
        msg.extend([0; 4]);
        encode_key(93, WireType::StartGroup, &mut msg);
        encode_key(1, WireType::Varint, &mut msg);
        encode_varint(1, &mut msg);
        encode_key(93, WireType::EndGroup, &mut msg);
        msg.extend(field(3, &one("pregnant", false).encode_to_vec()));
        assert!(pb::CheckEligibilityRequest::decode(msg.as_slice()).is_ok());
        assert_eq!(
            fields_of(duplicate_facts(&msg, at).expect("walks")),
            ["facts.pregnant"]
        );
        assert_eq!(duplicate_facts(&[0x1a, 0x05, 0x0a], at), Err(Malformed));
    }

    /// The field numbers above are those of the compiled contract: every request field of type
    /// `google.protobuf.Struct` is listed, and nothing else.
    #[test]
    fn field_numbers_match_the_contract() {
        let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("fds");
        let file = fds
            .file
            .iter()
            .find(|f| f.package() == "treatment.protocol.v1")
            .expect("the contract");
        let message = |name: &str| {
            file.message_type
                .iter()
                .find(|m| m.name() == name)
                .unwrap_or_else(|| panic!("no message {name}"))
        };
        let struct_fields = |name: &str| -> Vec<u32> {
            message(name)
                .field
                .iter()
                .filter(|f| f.type_name() == ".google.protobuf.Struct")
                .map(|f| u32::try_from(f.number()).expect("number"))
                .collect()
        };
        // Every request with a Struct field is checked (a response's Struct, such as the logged
        // request of `GetDecisionResponse`, is never read by the server).
        let with_structs: Vec<&str> = file
            .message_type
            .iter()
            .filter(|m| m.name().ends_with("Request") && !struct_fields(m.name()).is_empty())
            .map(|m| m.name())
            .collect();
        assert_eq!(
            with_structs,
            [
                "CheckEligibilityRequest",
                "CheckEligibilityCalendarRequest",
                "CheckContraindicationsRequest",
                "GetDepthLimitsRequest",
                "WatchDepthLimitsRequest",
                "BuildPlanRequest"
            ]
        );
        let field_of = |at: Option<FactsAt>| match at {
            Some(FactsAt::Field { facts }) => facts,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            struct_fields("CheckEligibilityRequest"),
            [field_of(facts_at::<pb::CheckEligibilityRequest>())]
        );
        assert_eq!(
            struct_fields("CheckEligibilityCalendarRequest"),
            [field_of(facts_at::<pb::CheckEligibilityCalendarRequest>())]
        );
        assert_eq!(
            struct_fields("CheckContraindicationsRequest"),
            [field_of(facts_at::<pb::CheckContraindicationsRequest>())]
        );
        assert_eq!(
            struct_fields("GetDepthLimitsRequest"),
            [field_of(facts_at::<pb::GetDepthLimitsRequest>())]
        );
        assert_eq!(
            struct_fields("WatchDepthLimitsRequest"),
            [field_of(facts_at::<pb::WatchDepthLimitsRequest>())]
        );
        assert_eq!(
            struct_fields("BuildPlanRequest"),
            [field_of(facts_at::<pb::BuildPlanRequest>())]
        );
        let Some(FactsAt::Each { list, name, facts }) =
            facts_at::<pb::CheckEligibilityBatchRequest>()
        else {
            panic!("batch");
        };
        let checks = message("CheckEligibilityBatchRequest")
            .field
            .iter()
            .find(|f| f.name() == name)
            .expect("checks");
        assert_eq!(checks.number, Some(i32::try_from(list).expect("n")));
        assert_eq!(
            checks.type_name(),
            ".treatment.protocol.v1.CheckEligibilityRequest"
        );
        assert_eq!(facts, field_of(facts_at::<pb::CheckEligibilityRequest>()));
        assert_eq!(facts_at::<pb::CheckEligibilityResponse>(), None);
    }
}
