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
        "PROTOCOL_CONFIG",
    ] {
        assert!(help.contains(var), "--help does not mention {var}:\n{help}");
    }
}

/// A config file fills in settings; an environment variable overrides it. Shown with the API-key
/// file setting, whose path the error names when the file does not exist.
#[test]
fn config_file_settings_yield_to_environment_variables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("protocol.yaml");
    std::fs::write(
        &config,
        "http_addr: 127.0.0.1:0\ngrpc_addr: 127.0.0.1:0\napi_keys_file: /nonexistent/from-file.yaml\n",
    )
    .expect("written");
    let run = |env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_protocol-server"));
        cmd.arg("--config")
            .arg(&config)
            .env_remove("PROTOCOL_API_KEYS_FILE");
        if let Some(path) = env {
            cmd.env("PROTOCOL_API_KEYS_FILE", path);
        }
        let out = cmd.output().expect("runs");
        assert!(
            !out.status.success(),
            "a missing keys file must stop the server"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let from_file = run(None);
    assert!(
        from_file.contains("/nonexistent/from-file.yaml"),
        "{from_file}"
    );
    let from_env = run(Some("/nonexistent/from-env.yaml"));
    assert!(
        from_env.contains("/nonexistent/from-env.yaml"),
        "{from_env}"
    );
    assert!(!from_env.contains("from-file"), "{from_env}");
}

#[test]
fn an_unknown_setting_in_the_config_file_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("protocol.yaml");
    std::fs::write(&config, "redis: redis://127.0.0.1:6379\n").expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_protocol-server"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown setting 'redis'"), "{stderr}");
    assert!(stderr.contains("redis_url"), "{stderr}");
}
