//! FHIR helpers shared by the tests: a QuestionnaireResponse built from a served Questionnaire.

use serde_json::{Value, json};

/// A fully answered response to `questionnaire`: every gate "no", and for each fact the answer
/// in `facts` (a healthy client), so the two requests carry the same answers.
pub fn response_to(questionnaire: &Value, facts: &Value) -> Value {
    let items: Vec<Value> = questionnaire["item"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| {
            let link_id = item["linkId"].as_str()?;
            if link_id.ends_with(".null_means") {
                let fact = link_id.trim_end_matches(".null_means");
                let never = facts.get(fact).is_some_and(Value::is_null);
                return Some(json!({"linkId": link_id, "answer": [{"valueBoolean": never}]}));
            }
            let answer = facts.get(link_id)?;
            if answer.is_null() {
                return None;
            }
            let value = match item["type"].as_str()? {
                "boolean" => json!({"valueBoolean": answer}),
                "integer" => json!({"valueInteger": answer}),
                "date" => json!({"valueDate": answer}),
                "choice" => json!({"valueCoding": {
                    "system": item["answerOption"][0]["valueCoding"]["system"],
                    "code": answer,
                }}),
                other => panic!("unexpected item type {other}"),
            };
            Some(json!({"linkId": link_id, "answer": [value]}))
        })
        .collect();
    json!({"resourceType": "QuestionnaireResponse", "status": "completed", "item": items})
}
