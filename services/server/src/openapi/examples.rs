//! The examples of docs/api.md on the operations: a request body and a `200` answer per
//! operation, kept in `examples.json` (answers captured from the server on the bundled rule set,
//! long lists clipped). Spectral's `oas3-valid-media-example` and the contract test check that
//! each one matches its schema, so an example that drifts from the contract fails the build.

use serde_json::Value;

/// `{operationId: {"request": body, "response": 200 body}}`.
const EXAMPLES: &str = include_str!("examples.json");

/// Puts each example on its operation (JSON request bodies and `200` answers only).
pub fn attach(doc: &mut Value) {
    let Ok(Value::Object(examples)) = serde_json::from_str::<Value>(EXAMPLES) else {
        return;
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for op in item.values_mut() {
            let Some(example) = op["operationId"].as_str().and_then(|id| examples.get(id)) else {
                continue;
            };
            if let Some(request) = example.get("request")
                && let Some(media) = op.pointer_mut("/requestBody/content/application~1json")
            {
                media["example"] = request.clone();
            }
            if let Some(response) = example.get("response")
                && let Some(media) = op.pointer_mut("/responses/200/content/application~1json")
            {
                media["example"] = response.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_lands_on_an_operation() {
        let doc = super::super::skeleton();
        let examples: serde_json::Value =
            serde_json::from_str(super::EXAMPLES).expect("examples.json is JSON");
        let ops: Vec<&serde_json::Value> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|i| i.as_object())
            .flat_map(|i| i.values())
            .collect();
        for (id, example) in examples.as_object().expect("object") {
            let op = ops
                .iter()
                .find(|op| op["operationId"] == id.as_str())
                .unwrap_or_else(|| panic!("no operation {id}"));
            if example.get("request").is_some() {
                assert!(
                    op.pointer("/requestBody/content/application~1json/example")
                        .is_some(),
                    "{id}: request example not attached"
                );
            }
            if example.get("response").is_some() {
                assert!(
                    op.pointer("/responses/200/content/application~1json/example")
                        .is_some(),
                    "{id}: response example not attached"
                );
            }
        }
    }
}
