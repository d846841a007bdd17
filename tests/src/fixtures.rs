//! Fixtures shared by the black-box test binaries: the client every scenario starts from, and a
//! gRPC request carrying an API key.

use serde_json::Value;
use tonic::metadata::MetadataValue;

/// A fully answered healthy adult: the engine scenarios' `healthy_adult` preset, read from
/// `services/engine/tests/cases/clients.yaml` so there is one list of answers to keep in step with
/// the rule set's facts.
pub fn healthy_facts() -> Value {
    let path = crate::workspace_root().join("services/engine/tests/cases/clients.yaml");
    let text = std::fs::read_to_string(&path).expect("clients.yaml");
    let mut clients: serde_json::Map<String, Value> =
        serde_saphyr::from_str(&text).expect("clients.yaml parses");
    clients
        .remove("healthy_adult")
        .expect("clients.yaml has healthy_adult")
}

/// A gRPC request with `authorization: Bearer <key>` metadata.
pub fn bearer<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().expect("metadata value");
    req.metadata_mut().insert("authorization", value);
    req
}
