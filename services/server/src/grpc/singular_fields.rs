//! Singular fields given twice in a request, found in the encoded bytes.
//!
//! Protobuf keeps the last of a scalar field given twice (`treatment` sent as "peel", then as
//! "microneedling"), merges a message field given twice, and keeps the last member of a `oneof`
//! given twice (a `Value` sent as `true`, then as `null`). REST refuses a key given twice; over
//! gRPC prost reads such a message without a word, so one of the client's two answers is dropped
//! silently. Once decoded, the duplicate is gone: it can only be seen in the bytes.
//!
//! The codec ([`super::codec`]) walks every request's bytes once more after prost has decoded them
//! (so the encoding is known to be valid), reading only field keys and lengths, with the request's
//! descriptor (the compiled contract's, [`super::pb::FILE_DESCRIPTOR_SET`]): a singular field, or
//! a second member of one `oneof`, seen twice in one message is refused, naming its path as REST
//! would (`history[0].date`, `facts.pregnant`); embedded messages are walked too. Repeated
//! fields and maps are what they are. Fact ids given twice in a `Struct` are
//! [`super::duplicate_facts`]'s.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use protocol_engine::FieldViolation;

use super::pb;

/// What the walk needs of one field.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    repeated: bool,
    /// Fields of one `oneof` share its index: any two of them are a duplicate.
    oneof: Option<i32>,
    /// The full name of its message type, for an embedded message.
    message: Option<String>,
}

/// Every message of the contract and of the files it imports, by full name (`.pkg.Name`).
static MESSAGES: LazyLock<HashMap<String, HashMap<u32, Field>>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    let Ok(fds) = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET) else {
        return out;
    };
    for file in &fds.file {
        let prefix = format!(".{}", file.package());
        for message in &file.message_type {
            add(&prefix, message, &mut out);
        }
    }
    out
});

fn add(
    prefix: &str,
    message: &prost_types::DescriptorProto,
    out: &mut HashMap<String, HashMap<u32, Field>>,
) {
    let name = format!("{prefix}.{}", message.name());
    for nested in &message.nested_type {
        add(&name, nested, out);
    }
    let fields = message
        .field
        .iter()
        .filter_map(|f| {
            let number = u32::try_from(f.number()).ok()?;
            Some((
                number,
                Field {
                    name: f.name().to_owned(),
                    repeated: f.label() == Label::Repeated,
                    // A proto3 `optional` is a synthetic oneof of one field: still one slot.
                    oneof: f.oneof_index,
                    message: (f.r#type() == Type::Message).then(|| f.type_name().to_owned()),
                },
            ))
        })
        .collect();
    out.insert(name, fields);
}

/// The bytes could not be walked (prost decoded them, so this does not happen).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The singular fields (and `oneof` members) given twice in the encoded message `bytes` of type
/// `full_name` (`.treatment.protocol.v1.CheckEligibilityRequest`), each named by its path.
pub fn duplicate_fields(bytes: &[u8], full_name: &str) -> Result<Vec<FieldViolation>, Malformed> {
    let mut out = Vec::new();
    walk(bytes, full_name, "", &mut out, 0)?;
    Ok(out)
}

/// Embedded messages deeper than this are not walked (prost's own recursion limit is 100).
const MAX_DEPTH: usize = 32;

fn walk(
    mut bytes: &[u8],
    message: &str,
    path: &str,
    out: &mut Vec<FieldViolation>,
    depth: usize,
) -> Result<(), Malformed> {
    let Some(fields) = MESSAGES.get(message) else {
        return Ok(()); // a type the contract does not describe: nothing to check
    };
    if depth > MAX_DEPTH {
        return Ok(());
    }
    // (field number or oneof slot) → first field seen in it; repeated ones are counted for paths.
    // (field number, or -1 - oneof index) → the first field seen in that slot. Paths are built
    // only for a violation or an embedded message: the walk runs on every request.
    let mut seen: Vec<(i64, u32)> = Vec::new();
    // Occurrences of each repeated field so far, for `history[3]`.
    let mut counts: Vec<(u32, usize)> = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        let wire = key & 7;
        let payload = skip(&mut bytes, wire)?;
        let Some(field) = fields.get(&number) else {
            continue; // unknown fields are prost's business
        };
        // Named as REST names them: a Struct's entry by its key (`facts.pregnant`), its value's
        // kinds by the fact; a history entry by its place in the list (`history[0].date`).
        let at = || match message {
            STRUCT_ENTRY | VALUE | HISTORY_LIST => path.to_owned(),
            _ if path.is_empty() => field.name.clone(),
            _ => format!("{path}.{}", field.name),
        };
        let index = if field.repeated {
            match counts.iter_mut().find(|(n, _)| *n == number) {
                Some((_, count)) => {
                    *count += 1;
                    *count - 1
                }
                None => {
                    counts.push((number, 1));
                    0
                }
            }
        } else {
            0
        };
        // A `Struct` given twice merges, and may (its entries' keys are checked by
        // `duplicate_facts`: the contract allows facts sent in two parts).
        if !field.repeated && field.message.as_deref() != Some(STRUCT) {
            let slot = field.oneof.map_or(i64::from(number), |o| -1 - i64::from(o));
            match seen.iter().find(|(s, _)| *s == slot) {
                Some((_, first)) if *first == number => {
                    let at = at();
                    out.push(FieldViolation {
                        message: format!(
                            "`{at}` is given more than once (`{}` twice): send each field once",
                            field.name
                        ),
                        field: at,
                    });
                }
                Some((_, first)) => {
                    let at = at();
                    let other = fields.get(first).map_or("", |f| f.name.as_str());
                    out.push(FieldViolation {
                        message: format!(
                            "`{at}`: `{other}` and `{}` are one choice, given together: send one",
                            field.name
                        ),
                        field: at,
                    });
                }
                None => seen.push((slot, number)),
            }
        }
        if let (Some(inner), Some(payload), 2) = (&field.message, payload, wire) {
            let here = match message {
                STRUCT => format!("{path}.{}", entry_key(payload).unwrap_or_default()),
                _ if field.repeated => format!("{}[{index}]", at()),
                _ => at(),
            };
            walk(payload, inner, &here, out, depth + 1)?;
        }
    }
    Ok(())
}

const STRUCT: &str = ".google.protobuf.Struct";
const STRUCT_ENTRY: &str = ".google.protobuf.Struct.FieldsEntry";
const VALUE: &str = ".google.protobuf.Value";
const HISTORY_LIST: &str = ".treatment.protocol.v1.HistoryList";

/// The key (field 1) of a Struct's entry, if it is text.
fn entry_key(mut entry: &[u8]) -> Option<&str> {
    let mut key = None;
    while !entry.is_empty() {
        let tag = varint(&mut entry).ok()?;
        let payload = skip(&mut entry, tag & 7).ok()?;
        if tag >> 3 == 1 {
            key = payload.and_then(|p| std::str::from_utf8(p).ok());
        }
    }
    key
}

fn varint(bytes: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(Malformed)?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed)
}

/// Skips one field's value; answers its payload when it is length-delimited.
fn skip<'b>(bytes: &mut &'b [u8], wire: u64) -> Result<Option<&'b [u8]>, Malformed> {
    let take = |bytes: &mut &'b [u8], n: usize| -> Result<&'b [u8], Malformed> {
        if bytes.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    };
    match wire {
        0 => varint(bytes).map(|_| None),
        1 => take(bytes, 8).map(|_| None),
        2 => {
            let len = usize::try_from(varint(bytes)?).map_err(|_| Malformed)?;
            take(bytes, len).map(Some)
        }
        5 => take(bytes, 4).map(|_| None),
        _ => Err(Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = ".treatment.protocol.v1.CheckEligibilityRequest";

    fn paths(v: Vec<FieldViolation>) -> Vec<String> {
        v.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn the_contract_is_described() {
        let fields = MESSAGES.get(REQUEST).expect("the request is described");
        assert_eq!(fields[&1].name, "treatment");
        assert!(
            MESSAGES.contains_key(".google.protobuf.Value"),
            "imports too"
        );
    }

    #[test]
    fn a_singular_field_or_a_oneof_given_twice_is_named() {
        let once = pb::CheckEligibilityRequest {
            treatment: "microneedling".into(),
            date: "2026-12-01".into(),
            history: Some(pb::HistoryList {
                entries: vec![pb::HistoryEntry::default(), pb::HistoryEntry::default()],
            }),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            paths(duplicate_fields(&once, REQUEST).expect("walks")),
            Vec::<String>::new()
        );

        // `treatment` again, at the end: prost keeps "peel".
        let mut twice = once.clone();
        twice.extend(
            pb::CheckEligibilityRequest {
                treatment: "peel".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(
            pb::CheckEligibilityRequest::decode(twice.as_slice())
                .expect("prost reads it")
                .treatment,
            "peel"
        );
        assert_eq!(
            paths(duplicate_fields(&twice, REQUEST).expect("walks")),
            ["treatment"]
        );

        // A history entry's date given twice: named at its place.
        let entry = [
            pb::HistoryEntry {
                date: "2026-01-01".into(),
                ..Default::default()
            }
            .encode_to_vec(),
            pb::HistoryEntry {
                date: "2026-02-01".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ]
        .concat();
        let mut list = vec![0x0a, u8::try_from(entry.len()).expect("short")];
        list.extend(&entry);
        let mut msg = vec![0x4a, u8::try_from(list.len()).expect("short")]; // history = 9
        msg.extend(&list);
        assert_eq!(
            paths(duplicate_fields(&msg, REQUEST).expect("walks")),
            ["history[0].date"]
        );
        assert_eq!(
            duplicate_fields(&[0x0a, 0x05, 0x61], REQUEST),
            Err(Malformed)
        );

        // A fact answered `true` and then `null` in one Value: prost keeps `null`.
        let value = [0x20, 0x01, 0x08, 0x00]; // bool_value = true, null_value = NULL
        let mut entry = vec![0x0a, 8];
        entry.extend(b"pregnant");
        entry.extend([0x12, 4]);
        entry.extend(value);
        let mut facts = vec![0x0a, u8::try_from(entry.len()).expect("short")];
        facts.extend(&entry);
        let mut msg = vec![0x1a, u8::try_from(facts.len()).expect("short")]; // facts = 3
        msg.extend(&facts);
        let found = duplicate_fields(&msg, REQUEST).expect("walks");
        assert_eq!(paths(found.clone()), ["facts.pregnant"]);
        assert!(found[0].message.contains("one choice"), "{:?}", found[0]);
    }
}
