//! Masking the facts an operator names before a decision is logged
//! (`PROTOCOL_DECISION_LOG_MASK=pregnant:drop,date_of_birth:hash`).
//!
//! A named fact is either **dropped** (the row keeps no trace of its value; a replay treats it
//! as unanswered) or **hashed**: replaced by `hmac-sha256:<hex>`, an HMAC-SHA256 of the value's
//! JSON text keyed with a secret only the operator holds (`PROTOCOL_DECISION_LOG_MASK_KEY_FILE`).
//! A plain SHA-256 would hide nothing: a yes/no or a date of birth is found by hashing every
//! possible value. Keyed, equal values still compare equal across rows (an auditor holding the
//! key can check a claimed value), and without the key the hash says nothing. Facts not named
//! are stored as given, so a decision on them can be replayed exactly.
//!
//! Every masked fact present in a request is recorded with the row (`masked_facts`), so a
//! replay names what it could not replay instead of guessing from the values.

use std::collections::BTreeMap;
use std::str::FromStr;

use hmac::{KeyInit, Mac};
use serde_json::Value;

/// The prefix of a hashed fact value.
pub const HASH_PREFIX: &str = "hmac-sha256:";

/// The shortest key accepted for hashing (bytes): shorter keys are guessable.
pub const MIN_KEY_BYTES: usize = 16;

/// What happens to a named fact's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MaskHow {
    /// Left out of the stored request.
    Drop,
    /// Replaced by its keyed hash.
    Hash,
}

impl MaskHow {
    pub fn as_str(self) -> &'static str {
        match self {
            MaskHow::Drop => "drop",
            MaskHow::Hash => "hash",
        }
    }
}

/// One `fact:drop` or `fact:hash` of the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskRule {
    pub fact: String,
    pub how: MaskHow,
}

impl FromStr for MaskRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (fact, how) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("'{s}': expected FACT:drop or FACT:hash"))?;
        let how = match how.trim() {
            "drop" => MaskHow::Drop,
            "hash" => MaskHow::Hash,
            other => {
                return Err(format!(
                    "'{s}': '{other}' is not a masking (expected drop or hash)"
                ));
            }
        };
        let fact = fact.trim();
        if fact.is_empty() {
            return Err(format!("'{s}': no fact named before ':'"));
        }
        Ok(Self {
            fact: fact.to_owned(),
            how,
        })
    }
}

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// The masking of one server: the named facts and, when any is hashed, the HMAC keyed once at
/// start (cloned per hashed value, so the key schedule is not redone on the request path).
#[derive(Clone, Default)]
pub struct Masking {
    rules: BTreeMap<String, MaskHow>,
    mac: Option<HmacSha256>,
}

impl std::fmt::Debug for Masking {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masking")
            .field("rules", &self.rules)
            .field("key", &self.mac.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// The masked facts of one request, by name: how each was masked.
pub type Masked = BTreeMap<String, MaskHow>;

impl Masking {
    /// Checks the setting against the facts the rule sets declare (`known`) and the key: an
    /// unknown fact name (a typo would leave the fact stored as given), a fact named twice, or a
    /// `hash` without a key long enough is refused, naming the setting.
    pub fn new<'a>(
        rules: &[MaskRule],
        key: Option<Vec<u8>>,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        let known: std::collections::BTreeSet<&str> = known.into_iter().collect();
        let mut by_name = BTreeMap::new();
        for rule in rules {
            if !known.contains(rule.fact.as_str()) {
                let hint = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(&rule.fact, k), *k))
                    .filter(|(score, _)| *score >= 0.85)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, k)| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "PROTOCOL_DECISION_LOG_MASK: no rule set declares a fact '{}'{hint}; \
                     the facts are: {}",
                    rule.fact,
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            if by_name.insert(rule.fact.clone(), rule.how).is_some() {
                return Err(format!(
                    "PROTOCOL_DECISION_LOG_MASK: fact '{}' is named twice",
                    rule.fact
                ));
            }
        }
        let hashes = by_name.values().any(|h| *h == MaskHow::Hash);
        let mac = match key {
            Some(k) if k.len() < MIN_KEY_BYTES => {
                return Err(format!(
                    "PROTOCOL_DECISION_LOG_MASK_KEY(_FILE): the hashing key must be at least \
                     {MIN_KEY_BYTES} bytes (got {})",
                    k.len()
                ));
            }
            // HMAC takes keys of any length: this cannot fail for a key of at least 16 bytes.
            Some(k) => Some(
                <HmacSha256 as KeyInit>::new_from_slice(&k)
                    .map_err(|_| "PROTOCOL_DECISION_LOG_MASK_KEY(_FILE): unusable key")?,
            ),
            None if hashes => {
                return Err(
                    "PROTOCOL_DECISION_LOG_MASK hashes facts: set the secret key in \
                     PROTOCOL_DECISION_LOG_MASK_KEY_FILE (or PROTOCOL_DECISION_LOG_MASK_KEY)"
                        .into(),
                );
            }
            None => None,
        };
        Ok(Self {
            rules: by_name,
            mac,
        })
    }

    /// Whether any fact is masked.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The request as logged: in every `facts` object (at any depth) each named fact is dropped
    /// or hashed; the others are kept as given. Returns which facts were masked.
    pub fn apply(&self, mut request: Value) -> (Value, Masked) {
        let mut masked = Masked::new();
        self.walk(&mut request, &mut masked);
        (request, masked)
    }

    fn walk(&self, v: &mut Value, masked: &mut Masked) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "facts"
                        && let Value::Object(facts) = child
                    {
                        self.mask(facts, masked);
                    } else if k == "questionnaire_response" {
                        *child = self.mask_response(child, masked);
                    } else {
                        self.walk(child, masked);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i, masked)),
            _ => {}
        }
    }

    fn mask(&self, facts: &mut serde_json::Map<String, Value>, masked: &mut Masked) {
        for (name, how) in &self.rules {
            match how {
                MaskHow::Drop => {
                    if facts.remove(name).is_some() {
                        masked.insert(name.clone(), MaskHow::Drop);
                    }
                }
                MaskHow::Hash => {
                    if let Some(value) = facts.get_mut(name) {
                        *value = Value::String(self.hash(value));
                        masked.insert(name.clone(), MaskHow::Hash);
                    }
                }
            }
        }
    }

    /// A QuestionnaireResponse as logged: only its `status` and each item's `linkId` and
    /// answers, so it replays as the same facts. Everything else goes, masking or not: a response
    /// may carry the patient's identity (`subject`, `author`, `contained`, narrative text). The
    /// item of a masked fact is dropped whether the fact is set to `drop` or `hash` (an answer
    /// replaced by a hash would no longer be a valid answer), and so is its "never" gate
    /// (`<fact>.null_means`); `masked_facts` names it either way.
    fn mask_response(&self, response: &Value, masked: &mut Masked) -> Value {
        let items: Vec<Value> = response
            .get("item")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter(|item| {
                        let Some(link_id) = item.get("linkId").and_then(Value::as_str) else {
                            return true;
                        };
                        // A date fact's "never" gate answers that fact: it goes with it.
                        let name = link_id
                            .strip_suffix(protocol_engine::fhir::NULL_MEANS_SUFFIX)
                            .unwrap_or(link_id);
                        match self.rules.get(name) {
                            Some(how) => {
                                masked.insert(name.to_owned(), *how);
                                false
                            }
                            None => true,
                        }
                    })
                    .map(|item| {
                        let mut kept = serde_json::Map::new();
                        for key in ["linkId", "answer"] {
                            if let Some(v) = item.get(key) {
                                kept.insert(key.into(), v.clone());
                            }
                        }
                        Value::Object(kept)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut kept = serde_json::Map::new();
        for key in ["resourceType", "status"] {
            if let Some(v) = response.get(key) {
                kept.insert(key.into(), v.clone());
            }
        }
        kept.insert("item".into(), Value::Array(items));
        Value::Object(kept)
    }

    /// `hmac-sha256:<hex>` of the value's JSON text (so `true` and `"true"` differ).
    fn hash(&self, value: &Value) -> String {
        // `new` refuses `hash` without a key, so there is always one here; were there none, the
        // value would still not be stored.
        let Some(mut mac) = self.mac.clone() else {
            return format!("{HASH_PREFIX}unavailable");
        };
        mac.update(value.to_string().as_bytes());
        format!(
            "{HASH_PREFIX}{}",
            const_hex::encode(mac.finalize().into_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KNOWN: [&str; 5] = [
        "pregnant",
        "date_of_birth",
        "fitzpatrick",
        "rosacea",
        "isotretinoin_last_dose",
    ];

    fn masking(setting: &str, key: Option<&str>) -> Result<Masking, String> {
        let rules: Vec<MaskRule> = setting
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Masking::new(&rules, key.map(|k| k.as_bytes().to_vec()), KNOWN)
    }

    #[test]
    fn named_facts_are_dropped_or_hashed_at_any_depth_the_others_kept() {
        let m = masking(
            "pregnant:drop,date_of_birth:hash",
            Some("a-key-of-sixteen-bytes"),
        )
        .expect("valid");
        let (logged, masked) = m.apply(json!({
            "treatment": "botox",
            "facts": {"pregnant": true, "date_of_birth": "1979-03-14", "fitzpatrick": 3},
            "checks": [{"facts": {"pregnant": false}}],
        }));
        assert_eq!(logged["facts"].get("pregnant"), None);
        assert_eq!(logged["facts"]["fitzpatrick"], 3);
        let hashed = logged["facts"]["date_of_birth"].as_str().expect("a string");
        assert!(hashed.starts_with(HASH_PREFIX) && hashed.len() == HASH_PREFIX.len() + 64);
        assert!(!logged.to_string().contains("1979-03-14"));
        assert_eq!(logged["checks"][0]["facts"], json!({}));
        assert_eq!(
            masked,
            Masked::from([
                ("pregnant".into(), MaskHow::Drop),
                ("date_of_birth".into(), MaskHow::Hash)
            ])
        );
        // Keyed: the same value hashes the same under one key, differently under another.
        let (again, _) = m.apply(json!({"facts": {"date_of_birth": "1979-03-14"}}));
        assert_eq!(again["facts"]["date_of_birth"], hashed);
        let other = masking("date_of_birth:hash", Some("another-key-of-16-bytes")).expect("ok");
        let (other, _) = other.apply(json!({"facts": {"date_of_birth": "1979-03-14"}}));
        assert_ne!(other["facts"]["date_of_birth"], hashed);
    }

    #[test]
    fn a_questionnaire_response_keeps_only_its_answers_and_drops_masked_items() {
        let m = masking("pregnant:hash", Some("0123456789abcdef0123")).expect("valid");
        let (logged, masked) = m.apply(json!({
            "treatment": "microneedling",
            "questionnaire_response": {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "subject": {"reference": "Patient/123", "display": "Jane Doe"},
                "item": [
                    {"linkId": "pregnant", "text": "Pregnant?", "answer": [{"valueBoolean": true}]},
                    {"linkId": "fitzpatrick", "answer": [{"valueInteger": 4}]},
                ],
            },
        }));
        assert_eq!(
            logged,
            json!({
                "treatment": "microneedling",
                "questionnaire_response": {
                    "resourceType": "QuestionnaireResponse",
                    "status": "completed",
                    "item": [{"linkId": "fitzpatrick", "answer": [{"valueInteger": 4}]}],
                },
            })
        );
        assert_eq!(masked.get("pregnant"), Some(&MaskHow::Hash));
    }

    /// A date fact's "never" gate (`<fact>.null_means`) answers the fact as much as its date
    /// does ("never took it"): masking the fact drops the gate too, and names the fact even when
    /// only the gate was sent.
    #[test]
    fn a_masked_date_facts_never_gate_is_dropped_with_it() {
        let m = masking("isotretinoin_last_dose:drop", None).expect("valid");
        let gate = format!(
            "isotretinoin_last_dose{}",
            protocol_engine::fhir::NULL_MEANS_SUFFIX
        );
        let (logged, masked) = m.apply(json!({
            "questionnaire_response": {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "item": [
                    {"linkId": gate, "answer": [{"valueBoolean": true}]},
                    {"linkId": "fitzpatrick", "answer": [{"valueInteger": 4}]},
                ],
            },
        }));
        assert_eq!(
            logged["questionnaire_response"]["item"],
            json!([{"linkId": "fitzpatrick", "answer": [{"valueInteger": 4}]}])
        );
        assert_eq!(
            masked,
            Masked::from([("isotretinoin_last_dose".into(), MaskHow::Drop)])
        );
    }

    #[test]
    fn bad_settings_are_refused_with_a_message_naming_them() {
        let err = masking("pregnnt:drop", None).expect_err("unknown fact");
        assert!(
            err.contains("'pregnnt'") && err.contains("did you mean 'pregnant'"),
            "{err}"
        );
        let err = masking("pregnant:blur", None).expect_err("bad masking");
        assert!(err.contains("drop or hash"), "{err}");
        let err = masking("pregnant", None).expect_err("no masking");
        assert!(err.contains("FACT:drop"), "{err}");
        let err = masking(
            "pregnant:drop,pregnant:hash",
            Some("a-key-of-sixteen-bytes"),
        )
        .expect_err("twice");
        assert!(err.contains("twice"), "{err}");
        let err = masking("pregnant:hash", None).expect_err("no key");
        assert!(err.contains("PROTOCOL_DECISION_LOG_MASK_KEY_FILE"), "{err}");
        let err = masking("pregnant:hash", Some("short")).expect_err("short key");
        assert!(err.contains("at least 16 bytes"), "{err}");
        assert!(
            masking("pregnant:drop", None).is_ok(),
            "dropping needs no key"
        );
    }
}
