//! Fixtures shared by the black-box test binaries: the client every scenario starts from, and a
//! gRPC request carrying an API key.

use serde_json::{Value, json};
use tonic::metadata::MetadataValue;

/// A fully answered healthy adult (the engine scenarios' `healthy_adult`).
pub fn healthy_facts() -> Value {
    json!({
        "date_of_birth": "1990-05-14", "fitzpatrick": 2, "pregnant": false, "breastfeeding": false,
        "active_acne": false, "open_wounds": false, "sunburn": false, "skin_infection": false,
        "active_hsv": false, "hsv_history": false, "keloid_history": false,
        "bleeding_disorder": false, "anticoagulants": false, "immunosuppressed": false,
        "diabetes_uncontrolled": false, "autoimmune_disease": false, "scleroderma_active": false,
        "chemotherapy_current": false, "eczema_psoriasis_active": false, "rosacea": "none",
        "metal_allergy": false, "gold_allergy": false, "anaesthetic_allergy": false,
        "pacemaker_or_implant": false, "metal_implant_in_area": false,
        "skin_cancer_in_area": false, "tattoo_in_area": false, "isotretinoin_current": false,
        "isotretinoin_last_dose": null
    })
}

/// A gRPC request with `authorization: Bearer <key>` metadata.
pub fn bearer<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().expect("metadata value");
    req.metadata_mut().insert("authorization", value);
    req
}
