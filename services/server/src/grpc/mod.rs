//! The gRPC adapter (tonic): the `treatment.protocol.v1.TreatmentProtocolService` service generated from
//! `proto/treatment/protocol/v1/protocol.proto`, plus `grpc.health.v1` and server reflection so
//! `grpcurl` works with no proto file at hand.

mod admin;
mod coalesce;
pub mod codec;
pub mod convert;
mod decisions;
mod duplicate_facts;
mod notices;
mod service;
mod singular_fields;
pub(crate) mod status;
mod watch;

pub use admin::AdminService;
pub use coalesce::CoalescingIo;
pub use decisions::DecisionsService;
pub use service::ProtocolService;
pub use status::auth_status;

/// The encoded descriptors of google.rpc's error details (`ErrorInfo`, `BadRequest`, `RetryInfo`,
/// ...) and `google/protobuf/duration.proto`, served by the reflection service so that its
/// clients decode every status's details.
pub const ERROR_DETAILS_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("error_details_descriptor");

/// The generated messages, server and client (also used by the black-box tests and the gRPC load
/// generator, so every client speaks exactly the served contract).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("treatment.protocol.v1");

    /// The encoded descriptors of the contract (and `google/protobuf/struct.proto`), served by
    /// the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("protocol_descriptor");

    /// A watch of these limits from the start (no etag to resume from).
    impl From<GetDepthLimitsRequest> for WatchDepthLimitsRequest {
        fn from(p: GetDepthLimitsRequest) -> Self {
            Self {
                treatment: p.treatment,
                device: p.device,
                role: p.role,
                zone: p.zone,
                indication: p.indication,
                facts: p.facts,
                resume_etag: None,
                date: p.date,
                history: p.history,
                questionnaire_response_json: p.questionnaire_response_json,
            }
        }
    }
}

/// The fully qualified service name, as health checks and reflection list it.
pub const SERVICE_NAME: &str = "treatment.protocol.v1.TreatmentProtocolService";

/// The rule-set admin service's fully qualified name.
pub const ADMIN_SERVICE_NAME: &str = "treatment.protocol.v1.RuleSetAdminService";
