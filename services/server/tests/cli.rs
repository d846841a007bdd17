//! The binary's command line: `--help` lists every setting with its environment variable (the
//! configuration contract of docs/configuration.md). Living in the server's own package, this test
//! also makes `cargo test --workspace` build the `protocol-server` binary that the black-box tests
//! in `tests/` run.

use std::process::Command;

#[test]
fn help_lists_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_protocol-server"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "PROTOCOL_HTTP_ADDR",
        "PROTOCOL_GRPC_ADDR",
        "PROTOCOL_RULESETS_DIR",
        "PROTOCOL_API_KEYS_FILE",
        "PROTOCOL_API_KEYS",
        "PROTOCOL_REDIS_URL",
        "PROTOCOL_RECONCILE_INTERVAL_SECS",
        "PROTOCOL_MAX_STALENESS_SECS",
        "PROTOCOL_STALE_POLICY",
        "PROTOCOL_WATCH_HEARTBEAT_SECS",
        "PROTOCOL_REQUEST_TIMEOUT_SECS",
        "PROTOCOL_SHUTDOWN_GRACE_SECS",
        "PROTOCOL_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help does not mention {var}:\n{help}");
    }
}
