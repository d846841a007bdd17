//! The treatment-protocol server: thin adapters around `protocol-engine`.
//!
//! Requests flow one way: adapter (parse) → the door, [`app::App`] (authenticate, freshness, the
//! clinic's rule set, telemetry, engine, one error type) → adapter (render). The compiled rule sets live in one [`catalog::Catalog`] behind `arc-swap`, so
//! the request path takes no lock and makes no Redis call.
//!
//! - [`app`]: the one door every operation of every protocol goes through, and rule-set admin.
//! - [`http`]: REST with axum (`/v1/...`, problem+json errors, OpenAPI from the same types).
//! - [`cds`]: CDS Hooks 2.0 (`/cds-services`): the `appointment-book` hook over FHIR prefetch.
//! - [`grpc`]: tonic service of `proto/treatment/protocol/v1/protocol.proto`, health, reflection.
//! - [`auth`]: API keys (stored as SHA-256 hashes), scopes and the clinic a key belongs to, and
//!   JWTs of trusted issuers; [`jwks`] fetches the keys of issuers configured by URL.
//! - [`startup`]: binds both listeners on one runtime and serves until SIGTERM/SIGINT.
//! - [`telemetry`], [`observe`], [`metrics`]: logs, OpenTelemetry spans and metrics (no health
//!   data in any of them).

// The door and what it holds live in `protocol-app`; re-exported so that adapters and tests
// name them as before (`crate::app::App`).
pub use protocol_app::{app, auth, catalog, config, context, decision_log, metrics, state, store};

pub(crate) mod cds;
pub mod edge;
pub mod grpc;
pub(crate) mod http;
pub(crate) mod jwks;
pub(crate) mod observe;
pub(crate) mod openapi;
pub mod startup;
pub mod telemetry;

/// Checks of the crate's shape that the compiler cannot make.
#[cfg(test)]
mod architecture {
    use std::path::Path;

    /// The crate's source files, each without its test modules (by convention, last in a file
    /// from its first `#[cfg(test)]`).
    fn production_sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                production_sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                out.push((path.display().to_string(), code.to_owned()));
            }
        }
    }

    /// The door is built once, at start-up, and cloned into every adapter: its caches (pinned
    /// versions, the notice board every watch shares, contracts) exist once per process.
    #[test]
    fn the_door_is_built_once_in_production_code() {
        let mut sources = Vec::new();
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        production_sources(&here.join("src"), &mut sources);
        production_sources(&here.join("../app/src"), &mut sources);
        let builds: Vec<&str> = sources
            .iter()
            .flat_map(|(path, code)| code.matches("App::new(").map(move |_| path.as_str()))
            .collect();
        assert_eq!(builds.len(), 1, "App::new called in {builds:?}");
        assert!(builds[0].ends_with("startup.rs"), "{builds:?}");
    }
}
