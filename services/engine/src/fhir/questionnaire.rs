//! The intake questions of a rule set as a FHIR R4 `Questionnaire`: one item per fact, so an
//! EHR or intake app can render the form and send the answers back as a `QuestionnaireResponse`.
//!
//! | fact | item |
//! |---|---|
//! | `bool` | `boolean` |
//! | `integer` (`min`, `max`) | `integer` with the core `minValue` / `maxValue` extensions |
//! | `enum` (`values`, `labels`) | `choice` with one `answerOption.valueCoding` per value (display: its label) |
//! | `date` | `date` |
//! | `date` with `null_means` | a `boolean` gate `<fact>.null_means` ("Never took isotretinoin"), then the `date` item, enabled when the gate is answered `false` |
//!
//! The gate is the only `enableWhen`: it is sound because the gate's own answer is the fact's
//! answer (`true` is the explicit `null`, "never"), so skipping the date never leaves the fact
//! unknown. A gate between two facts (ask B only after A) would leave B unknown whenever it is
//! skipped, and the engine never reads unknown as "no": the rule set would have to declare what
//! a skipped answer means, a clinical claim per fact, so the format has no such gate.
//!
//! The linkId of every item is the fact id (the gate's is `<fact>.null_means`), `code` the
//! fact's standard codes, `text` its question. The treatments the questions serve are listed in
//! `useContext` (type `focus`), one context per treatment, coded in [`super::TREATMENT_SYSTEM`]
//! and with the treatment's own standard codes.

use serde::{Deserialize, Serialize};

use super::{
    DIGEST_SYSTEM, MAX_VALUE_URL, MIN_VALUE_URL, NULL_MEANS_SUFFIX, QUESTIONNAIRE_URL_PREFIX,
    TREATMENT_SYSTEM, USAGE_CONTEXT_TYPE_SYSTEM, answer_system, resource_id,
};
use crate::api::Coding;
use crate::ids::Ix;
use crate::model::{FactKind, RuleSet};

/// A FHIR R4 `Questionnaire`, with the elements this service fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Questionnaire {
    /// Always `Questionnaire`.
    pub resource_type: String,
    /// The rule set's id as a resource id ([`super::resource_id`]).
    pub id: String,
    /// `urn:treatment-protocol:questionnaire:<rule set id>`.
    pub url: String,
    /// The digest of the rule set the questions come from.
    pub identifier: Vec<Identifier>,
    /// The rule set's version.
    pub version: String,
    /// A human title.
    pub title: String,
    /// Always `active`: only served rule sets are rendered.
    pub status: String,
    /// Always `["Patient"]`: the questions are about the client.
    pub subject_type: Vec<String>,
    /// What the form is for.
    pub description: String,
    /// The treatments the questions serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub use_context: Vec<UsageContext>,
    /// One item per fact (and a gate before each date fact that accepts "never").
    pub item: Vec<Item>,
}

/// A FHIR `Identifier` (system and value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identifier {
    /// The namespace of the value.
    pub system: String,
    /// The value.
    pub value: String,
}

/// A FHIR `UsageContext`: here, a treatment the questions serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UsageContext {
    /// The context type: `focus`.
    pub code: Coding,
    /// The treatment.
    pub value_codeable_concept: CodeableConcept,
}

/// A FHIR `CodeableConcept`: one concept in one or more systems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeableConcept {
    /// The concept's codes.
    pub coding: Vec<Coding>,
    /// Its name in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One question of the form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The fact id (the gate of a date fact: `<fact>.null_means`).
    pub link_id: String,
    /// The fact's standard codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<Coding>,
    /// The question.
    pub text: String,
    /// `boolean`, `integer`, `choice` or `date`.
    #[serde(rename = "type")]
    pub item_type: String,
    /// An integer's `minValue` and `maxValue`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// When the item is asked (a date after its gate is answered `false`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enable_when: Vec<EnableWhen>,
    /// A choice's answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_option: Vec<AnswerOption>,
}

/// A core extension with an integer value (`minValue`, `maxValue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// The extension's definition.
    pub url: String,
    /// Its value.
    pub value_integer: i64,
}

/// A condition on another item's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EnableWhen {
    /// The linkId of the item whose answer enables this one.
    pub question: String,
    /// `=`.
    pub operator: String,
    /// The answer that enables it.
    pub answer_boolean: bool,
}

/// One allowed answer of a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnswerOption {
    /// The enum value, in the fact's answer system, with its label as display.
    pub value_coding: Coding,
}

impl RuleSet {
    /// The rule set's intake questions as a FHIR R4 Questionnaire.
    pub fn questionnaire(&self) -> Questionnaire {
        let rs = &*self.0;
        let mut item = Vec::with_capacity(rs.fact_defs.len() + 8);
        for (i, def) in rs.fact_defs.iter().enumerate() {
            let Ok(ix) = Ix::try_from(i) else { continue };
            let id = rs.facts.name(ix);
            let question = |item_type: &str| Item {
                link_id: id.to_owned(),
                code: def.codes.clone(),
                text: def.question.clone(),
                item_type: item_type.to_owned(),
                extension: Vec::new(),
                enable_when: Vec::new(),
                answer_option: Vec::new(),
            };
            match &def.kind {
                FactKind::Bool => item.push(question("boolean")),
                FactKind::Integer { min, max } => item.push(Item {
                    extension: vec![
                        Extension {
                            url: MIN_VALUE_URL.to_owned(),
                            value_integer: *min,
                        },
                        Extension {
                            url: MAX_VALUE_URL.to_owned(),
                            value_integer: *max,
                        },
                    ],
                    ..question("integer")
                }),
                FactKind::Enum { values } => item.push(Item {
                    answer_option: values
                        .iter()
                        .enumerate()
                        .map(|(j, v)| AnswerOption {
                            value_coding: Coding {
                                system: answer_system(id),
                                code: v.to_string(),
                                display: def
                                    .labels
                                    .get(j)
                                    .cloned()
                                    .unwrap_or_else(|| v.to_string()),
                            },
                        })
                        .collect(),
                    ..question("choice")
                }),
                FactKind::Date { null_means: None } => item.push(question("date")),
                FactKind::Date {
                    null_means: Some(never),
                } => {
                    let gate = format!("{id}{NULL_MEANS_SUFFIX}");
                    item.push(Item {
                        link_id: gate.clone(),
                        code: Vec::new(),
                        text: capitalised(never),
                        item_type: "boolean".to_owned(),
                        extension: Vec::new(),
                        enable_when: Vec::new(),
                        answer_option: Vec::new(),
                    });
                    item.push(Item {
                        enable_when: vec![EnableWhen {
                            question: gate,
                            operator: "=".to_owned(),
                            answer_boolean: false,
                        }],
                        ..question("date")
                    });
                }
            }
        }
        let meta = &rs.meta;
        Questionnaire {
            resource_type: "Questionnaire".to_owned(),
            id: resource_id(&meta.id),
            url: format!("{QUESTIONNAIRE_URL_PREFIX}{}", meta.id),
            identifier: vec![Identifier {
                system: DIGEST_SYSTEM.to_owned(),
                value: meta.digest.clone(),
            }],
            version: meta.version.clone(),
            title: format!("Intake questions of rule set {} {}", meta.id, meta.version),
            status: "active".to_owned(),
            subject_type: vec!["Patient".to_owned()],
            description: "The questions the treatment-protocol service decides with. Answer what \
                          is known: an unanswered question is unknown, never \"no\", and a \
                          decision that needs it is `incomplete`."
                .to_owned(),
            use_context: self.treatment_contexts(),
            item,
        }
    }

    /// One `focus` usage context per treatment: its code in [`TREATMENT_SYSTEM`] and its
    /// standard codes (those of the procedure of the same id).
    fn treatment_contexts(&self) -> Vec<UsageContext> {
        let rs = &*self.0;
        rs.treatment_defs
            .iter()
            .enumerate()
            .filter_map(|(i, def)| {
                let ix = Ix::try_from(i).ok()?;
                let code = rs.treatments.name(ix).to_owned();
                let mut coding = vec![Coding {
                    system: TREATMENT_SYSTEM.to_owned(),
                    code,
                    display: def.name.clone(),
                }];
                coding.extend(
                    rs.display
                        .procedure_codes
                        .get(usize::from(def.procedure))
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
                Some(UsageContext {
                    code: Coding {
                        system: USAGE_CONTEXT_TYPE_SYSTEM.to_owned(),
                        code: "focus".to_owned(),
                        display: "Clinical Focus".to_owned(),
                    },
                    value_codeable_concept: CodeableConcept {
                        coding,
                        text: Some(def.name.clone()),
                    },
                })
            })
            .collect()
    }
}

/// `never took isotretinoin` → `Never took isotretinoin`.
fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
