//! The few FHIR R4 elements this service reads, typed, and the reading of a hook's JSON into them.
//!
//! Resources arrive whole from an EHR, so unknown elements are ignored (never refused); an element
//! this service reads that has the wrong JSON type is refused naming its path
//! (`prefetch.conditions.entry[2].resource.code`), never read as absent. A full FHIR model crate
//! (the R4B models of `fhir-model`) would cost minutes of build for the dozen elements read here.

use jiff::civil::Date;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::FieldViolation;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Coding {
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CodeableConcept {
    #[serde(default)]
    pub coding: Vec<Coding>,
}

impl CodeableConcept {
    /// `(system, code)` of each coding that has both.
    pub fn codes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.coding
            .iter()
            .filter_map(|c| Some((c.system.as_deref()?, c.code.as_deref()?)))
    }

    /// Whether a coding has this code (any system): for the status value sets, whose codes are
    /// unique within the element.
    pub fn has_code(&self, code: &str) -> bool {
        self.coding.iter().any(|c| c.code.as_deref() == Some(code))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Period {
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reference {
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub service_type: Vec<CodeableConcept>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub requested_period: Vec<Period>,
    #[serde(default)]
    pub reason_code: Vec<CodeableConcept>,
    #[serde(default)]
    pub based_on: Vec<Reference>,
    /// A `Device/<id>` participant names the device by the rule set's id.
    #[serde(default)]
    pub participant: Vec<Participant>,
    /// Contained resources: a `ServiceRequest` named by `basedOn` carries the body sites.
    #[serde(default)]
    pub contained: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Participant {
    #[serde(default)]
    pub actor: Option<Reference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    #[serde(default)]
    pub body_site: Vec<CodeableConcept>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(default)]
    pub birth_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(default)]
    pub clinical_status: Option<CodeableConcept>,
    #[serde(default)]
    pub verification_status: Option<CodeableConcept>,
    #[serde(default)]
    pub code: Option<CodeableConcept>,
    #[serde(default)]
    pub recorded_date: Option<String>,
    #[serde(default)]
    pub onset_date_time: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllergyIntolerance {
    #[serde(default)]
    pub clinical_status: Option<CodeableConcept>,
    #[serde(default)]
    pub verification_status: Option<CodeableConcept>,
    /// The substance.
    #[serde(default)]
    pub code: Option<CodeableConcept>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationStatement {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(default)]
    pub effective_date_time: Option<String>,
    #[serde(default)]
    pub effective_period: Option<Period>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(default)]
    pub authored_on: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Procedure {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub code: Option<CodeableConcept>,
    #[serde(default)]
    pub performed_date_time: Option<String>,
    #[serde(default)]
    pub performed_period: Option<Period>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Quantity {
    #[serde(default)]
    pub value: Option<serde_json::Number>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub code: Option<CodeableConcept>,
    #[serde(default)]
    pub effective_date_time: Option<String>,
    #[serde(default)]
    pub effective_period: Option<Period>,
    #[serde(default)]
    pub value_boolean: Option<bool>,
    #[serde(default)]
    pub value_integer: Option<i64>,
    #[serde(default)]
    pub value_quantity: Option<Quantity>,
    #[serde(default)]
    pub value_codeable_concept: Option<CodeableConcept>,
    #[serde(default)]
    pub value_string: Option<String>,
    #[serde(default)]
    pub value_date_time: Option<String>,
}

/// A QuestionnaireResponse: the client's answers to the rule set's intake questionnaire, kept
/// as sent (the engine reads it, as it reads one sent in place of `facts`), with where it is.
#[derive(Debug, Clone)]
pub struct Intake {
    pub json: Value,
    pub at: String,
    pub status: Option<String>,
    pub authored: Option<String>,
}

/// A resource this service reads, by its `resourceType`.
#[derive(Debug, Clone)]
pub enum Resource {
    Patient(Patient),
    Condition(Condition),
    AllergyIntolerance(AllergyIntolerance),
    MedicationStatement(MedicationStatement),
    MedicationRequest(MedicationRequest),
    Procedure(Procedure),
    Observation(Observation),
    QuestionnaireResponse(Intake),
    /// A fetch error the EHR reports in place of data (CDS Hooks 2.0: "SHOULD be conveyed as an
    /// OperationOutcome").
    OperationOutcome,
    /// Any other type: ignored.
    Other,
}

/// Reads JSON into `T`, naming the path at fault under `at`.
pub fn read<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, FieldViolation> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        FieldViolation {
            field: if inner == "." || inner.is_empty() {
                at.to_owned()
            } else {
                format!("{at}.{inner}")
            },
            message: e.inner().to_string(),
        }
    })
}

/// The `resourceType` of a resource.
fn resource_type<'v>(value: &'v Value, at: &str) -> Result<&'v str, FieldViolation> {
    match value.get("resourceType") {
        Some(Value::String(t)) => Ok(t),
        _ => Err(FieldViolation {
            field: format!("{at}.resourceType"),
            message: "a FHIR resource needs its `resourceType`".into(),
        }),
    }
}

/// One resource, by type.
pub fn resource(value: &Value, at: &str) -> Result<Resource, FieldViolation> {
    Ok(match resource_type(value, at)? {
        "Patient" => Resource::Patient(read(value, at)?),
        "Condition" => Resource::Condition(read(value, at)?),
        "AllergyIntolerance" => Resource::AllergyIntolerance(read(value, at)?),
        "MedicationStatement" => Resource::MedicationStatement(read(value, at)?),
        "MedicationRequest" => Resource::MedicationRequest(read(value, at)?),
        "Procedure" => Resource::Procedure(read(value, at)?),
        "Observation" => Resource::Observation(read(value, at)?),
        "QuestionnaireResponse" => {
            #[derive(Deserialize)]
            struct Head {
                #[serde(default)]
                status: Option<String>,
                #[serde(default)]
                authored: Option<String>,
            }
            let head: Head = read(value, at)?;
            Resource::QuestionnaireResponse(Intake {
                json: value.clone(),
                at: at.to_owned(),
                status: head.status,
                authored: head.authored,
            })
        }
        "OperationOutcome" => Resource::OperationOutcome,
        _ => Resource::Other,
    })
}

/// The resources of a prefetch value: a Bundle's entries (an entry without `resource`, or an
/// OperationOutcome entry of a search, is skipped), or one resource (a read). `null` is "no
/// data": no resources. A Bundle that is nothing but an OperationOutcome, or an OperationOutcome
/// in place of the Bundle, is a failed fetch: `Err(None)`.
pub fn prefetched(value: &Value, at: &str) -> Result<Vec<Resource>, Option<FieldViolation>> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    if !value.is_object() {
        return Err(Some(FieldViolation {
            field: at.to_owned(),
            message: "a prefetch value is a FHIR resource (a Bundle for a search) or null".into(),
        }));
    }
    if resource_type(value, at)? != "Bundle" {
        return match resource(value, at)? {
            Resource::OperationOutcome => Err(None),
            r => Ok(vec![r]),
        };
    }
    #[derive(Deserialize)]
    struct Bundle {
        #[serde(default)]
        entry: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        resource: Option<Value>,
    }
    let bundle: Bundle = read(value, at)?;
    let mut out = Vec::with_capacity(bundle.entry.len());
    for (i, e) in bundle.entry.iter().enumerate() {
        if let Some(r) = &e.resource {
            match resource(r, &format!("{at}.entry[{i}].resource"))? {
                Resource::OperationOutcome | Resource::Other => {}
                r => out.push(r),
            }
        }
    }
    Ok(out)
}

/// One appointment of the hook's context.
#[derive(Debug, Clone)]
pub struct Booked {
    pub appointment: Appointment,
    /// As sent, for the rebooking suggestion (which sends the Appointment back whole).
    pub json: Value,
    /// Its path in the request (`context.appointments.entry[0].resource`), for errors.
    pub at: String,
}

/// The appointments of the `appointment-book` context: a Bundle of Appointments, or a plain
/// array of them.
pub fn appointments(value: &Value) -> Result<Vec<Booked>, FieldViolation> {
    const AT: &str = "context.appointments";
    let items: Vec<(String, &Value)> = match value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{AT}[{i}]"), v))
            .collect(),
        Value::Object(o) if o.get("resourceType") == Some(&Value::from("Bundle")) => {
            match o.get("entry") {
                None => Vec::new(),
                Some(Value::Array(entries)) => entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let at = format!("{AT}.entry[{i}].resource");
                        (at, e.get("resource").unwrap_or(&Value::Null))
                    })
                    .collect(),
                Some(_) => {
                    return Err(FieldViolation {
                        field: format!("{AT}.entry"),
                        message: "a Bundle's `entry` is an array".into(),
                    });
                }
            }
        }
        _ => {
            return Err(FieldViolation {
                field: AT.into(),
                message: "a FHIR Bundle of Appointments, or an array of Appointments".into(),
            });
        }
    };
    if items.is_empty() {
        return Err(FieldViolation {
            field: AT.into(),
            message: "no appointment to check".into(),
        });
    }
    items
        .into_iter()
        .map(|(at, v)| {
            if resource_type(v, &at)? != "Appointment" {
                return Err(FieldViolation {
                    field: format!("{at}.resourceType"),
                    message: "the hook's appointments are Appointment resources".into(),
                });
            }
            Ok(Booked {
                appointment: read(v, &at)?,
                json: v.clone(),
                at,
            })
        })
        .collect()
}

/// The day of a FHIR `date`, `dateTime` or `instant`, as written (the local day of its offset).
/// A partial date (`2025`, `2025-06`) is taken at the last day it may mean: every day read here
/// starts a wait, an age or a gap, which a later day only makes longer or younger (the cautious
/// reading). `None`: not a FHIR date at all.
pub fn day(text: &str) -> Option<Date> {
    let date_part = text.get(..10.min(text.len()))?;
    match date_part.len() {
        10 => date_part.parse().ok(),
        7 => {
            let first: Date = format!("{date_part}-01").parse().ok()?;
            Some(first.last_of_month())
        }
        4 => format!("{date_part}-12-31").parse().ok(),
        _ => None,
    }
    .filter(|_| text.len() == date_part.len() || text.as_bytes().get(10) == Some(&b'T'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn days_as_written_and_partial_days_at_their_end() {
        let d = |s: &str| day(s).map(|d| d.to_string());
        assert_eq!(d("2026-11-30").as_deref(), Some("2026-11-30"));
        assert_eq!(
            d("2026-11-30T23:30:00-05:00").as_deref(),
            Some("2026-11-30")
        );
        assert_eq!(d("2025-02").as_deref(), Some("2025-02-28"));
        assert_eq!(d("2024").as_deref(), Some("2024-12-31"));
        assert_eq!(d("2026-13-01"), None);
        assert_eq!(d("yesterday"), None);
        assert_eq!(d("2026-11-30X"), None);
    }

    #[test]
    fn bundles_and_arrays_of_appointments() {
        let appt =
            json!({"resourceType": "Appointment", "id": "a1", "start": "2026-12-01T09:00:00Z"});
        let bundle =
            json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": appt}]});
        assert_eq!(appointments(&bundle).expect("bundle").len(), 1);
        assert_eq!(appointments(&json!([appt])).expect("array").len(), 1);
        let bad = json!([{"resourceType": "Patient"}]);
        assert_eq!(
            appointments(&bad).expect_err("not an appointment").field,
            "context.appointments[0].resourceType"
        );
        let typed = json!([{"resourceType": "Appointment", "serviceType": "x"}]);
        assert_eq!(
            appointments(&typed).expect_err("wrong type").field,
            "context.appointments[0].serviceType"
        );
        assert!(appointments(&json!([])).is_err());
    }

    #[test]
    fn prefetch_values() {
        assert!(
            prefetched(&Value::Null, "prefetch.x")
                .expect("null")
                .is_empty()
        );
        let oo = json!({"resourceType": "OperationOutcome"});
        assert!(matches!(prefetched(&oo, "prefetch.x"), Err(None)));
        let b = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Condition", "code": {"coding": [{"system": "s", "code": "c"}]}}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"fullUrl": "urn:x"}
        ]});
        assert_eq!(prefetched(&b, "prefetch.x").expect("bundle").len(), 1);
        let bad = json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Condition", "code": 3}}]});
        let Err(Some(v)) = prefetched(&bad, "prefetch.conditions") else {
            panic!("expected a violation")
        };
        assert_eq!(v.field, "prefetch.conditions.entry[0].resource.code");
    }
}
