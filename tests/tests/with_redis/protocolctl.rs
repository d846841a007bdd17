//! Issue 14 §1, black-box: `protocolctl`'s admin commands (`publish`, `activate`, `rollback`,
//! `versions`, `diff --remote`) through the real binary against a real server and Redis, with
//! the server and key from `PROTOCOL_URL` and `PROTOCOL_API_KEY`.

use protocol_tests::redis_server::RedisServer;
use protocol_tests::{KEY_AURORA, KEY_PLATFORM, ServerBuilder, protocolctl};

use crate::with_redis::common::{BUNDLED_VERSION, aurora};

#[test]
fn an_author_publishes_activates_diffs_and_rolls_back_with_protocolctl() {
    let redis = RedisServer::start().expect("redis starts");
    let server = ServerBuilder::new()
        .with_keys()
        .with_redis(&redis)
        .spawn()
        .expect("server starts");
    let url = server.url("");
    let env = [
        ("PROTOCOL_URL", url.as_str()),
        ("PROTOCOL_API_KEY", KEY_AURORA),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };

    // Tighter than the bundled overlay: published and activated (compare-and-set on the
    // version read first).
    let tight = file("tight.yaml", &aurora("2026.12.1", 0.8));
    let out = protocolctl(&["publish", &tight], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("published clinic-aurora 2026.12.1 (sha256:"),
        "{out:?}"
    );
    let out = protocolctl(&["activate", "clinic-aurora", "2026.12.1"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().next().unwrap_or_default(),
        format!("activated clinic-aurora 2026.12.1 (was {BUNDLED_VERSION})")
    );
    // What it changed for the clinic: tighter only.
    assert!(
        out.stdout.contains(&format!(
            "clinic-aurora {BUNDLED_VERSION} -> 2026.12.1: 0 looser"
        )),
        "{out:?}"
    );

    // A looser edit: the remote diff against the active version says so ...
    let loose_text = aurora("2026.12.2", 1.0);
    let loose = file("loose.yaml", &loose_text);
    let out = protocolctl(
        &[
            "diff",
            "--remote",
            &loose,
            "--base",
            "rulesets/base.yaml",
            "--fail-on-loosen",
        ],
        &env,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .starts_with("clinic-aurora 2026.12.1 -> clinic-aurora 2026.12.2:"),
        "{out:?}"
    );
    assert!(out.stdout.contains("0.8 -> 1"), "{out:?}");

    // ... and the server refuses to publish it, naming each loosening.
    let out = protocolctl(&["publish", &loose], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("422"), "{out:?}");
    assert!(
        out.stderr.contains("tighten.treatments[0]")
            && out
                .stderr
                .contains("loosens the active version '2026.12.1'"),
        "{out:?}"
    );

    // Declared, it is published, and `versions` shows the declaration.
    let declared = file(
        "declared.yaml",
        &format!(
            "{loose_text}loosening: {{reason: \"new cheek study\", approved_by: \"Dr. Vale\"}}\n"
        ),
    );
    let out = protocolctl(&["publish", &declared], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let out = protocolctl(&["versions", "clinic-aurora"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let line = |v: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(v))
            .unwrap_or_else(|| panic!("{v} listed: {out:?}"))
            .to_owned()
    };
    assert!(line("2026.12.1").starts_with("* "), "{out:?}");
    assert!(
        line("2026.12.2").contains("loosening: \"new cheek study\" approved by Dr. Vale"),
        "{out:?}"
    );

    // A stale expectation is refused (409) ...
    let out = protocolctl(
        &[
            "activate",
            "clinic-aurora",
            "2026.12.2",
            "--expected-current",
            BUNDLED_VERSION,
        ],
        &env,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("409"), "{out:?}");
    // ... the default reads the active version first. Serving the looser version is the point
    // of effect: refused without an approval, naming the loosening.
    let out = protocolctl(&["activate", "clinic-aurora", "2026.12.2"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("loosens what 'clinic-aurora' serves"),
        "{out:?}"
    );
    // A dry run shows it and the digest to approve, and moves nothing.
    let out = protocolctl(
        &["activate", "clinic-aurora", "2026.12.2", "--dry-run"],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with("would activate clinic-aurora 2026.12.2 (was 2026.12.1)"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("    looser depth microneedling"),
        "{out:?}"
    );
    let digest = out
        .stdout
        .split("--approve ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the digest to approve")
        .to_owned();
    let approve = [
        "activate",
        "clinic-aurora",
        "2026.12.2",
        "--approve",
        digest.as_str(),
        "--reason",
        "new cheek study",
        "--approver",
        "Dr. Vale",
    ];
    // The key that published it may not approve it (four eyes) ...
    let out = protocolctl(&approve, &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("four eyes"), "{out:?}");
    // ... another admin key may.
    let platform = [
        ("PROTOCOL_URL", url.as_str()),
        ("PROTOCOL_API_KEY", KEY_PLATFORM),
    ];
    let out = protocolctl(&approve, &platform);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with("activated clinic-aurora 2026.12.2 (was 2026.12.1)"),
        "{out:?}"
    );

    // Rollback returns to the version active before, compare-and-set (a tightening: no
    // approval needed).
    let out = protocolctl(&["rollback", "clinic-aurora"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.lines().next().unwrap_or_default(),
        "rolled back clinic-aurora to 2026.12.1 (was 2026.12.2)"
    );

    // The history shows each move with what it changed and the approval.
    let out = protocolctl(&["history", "clinic-aurora"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("activate 2026.12.2 (was 2026.12.1) by platform-ops")
            && out
                .stdout
                .contains("approved by Dr. Vale: \"new cheek study\""),
        "{out:?}"
    );

    // A clinic key pulls the active base its overlay extends (read only), and authors against it.
    let pulled = dir.path().join("base.json");
    let out = protocolctl(
        &["pull", "base", "--out", pulled.to_str().expect("utf-8")],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = protocolctl(
        &[
            "validate",
            "--base",
            pulled.to_str().expect("utf-8"),
            &tight,
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    // Or straight from the server: validate and diff compiled on its active base.
    let out = protocolctl(&["validate", "--server-base", "base", &tight], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let out = protocolctl(
        &[
            "diff",
            "--server-base",
            "base",
            "rulesets/clinics/clinic-aurora.yaml",
            &tight,
        ],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("tighter"), "{out:?}");
    // Scenarios run on the server's base too: `test` and `eval` with the overlay file alone.
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).expect("mkdir");
    std::fs::write(
        cases.join("cheeks.yaml"),
        r#"name: "The tightened overlay caps physicians' cheeks at 0.8 mm"
ruleset: clinic-aurora
check: depth_limits
request: {"treatment": "microneedling", "device": "dermapen_4", "role": "physician", "zone": "cheeks"}
want: {"zones": {"cheeks": {"max_depth_mm": 0.8}}}
"#,
    )
    .expect("write case");
    let lone = dir.path().join("a/b");
    std::fs::create_dir_all(&lone).expect("mkdir");
    let lone = lone.join("tight.yaml");
    std::fs::copy(&tight, &lone).expect("copy");
    let (cases, lone) = (
        cases.to_str().expect("utf-8"),
        lone.to_str().expect("utf-8"),
    );
    let out = protocolctl(
        &["test", cases, "--rulesets", lone, "--server-base", "base"],
        &env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ok 1 - cheeks"), "{out:?}");
    // Without a base anywhere, the error names the flags that fix it.
    let out = protocolctl(&["test", cases, "--rulesets", lone], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("--base FILE") && out.stderr.contains("--server-base base"),
        "{out:?}"
    );

    // Another version of the base is not the clinic's to read.
    let out = protocolctl(&["pull", "base", "--version", "2099.1.1"], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("403"), "{out:?}");

    // A version never activated is retired; its name stays reserved.
    let spare = file("spare.yaml", &aurora("2026.12.3", 0.7));
    assert_eq!(protocolctl(&["publish", &spare], &env).code, 0);
    let out = protocolctl(&["retire", "clinic-aurora", "2026.12.3"], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with("retired clinic-aurora 2026.12.3 (sha256:"),
        "{out:?}"
    );

    // Without a key the server's refusal is shown, not a panic.
    let out = protocolctl(
        &["versions", "clinic-aurora"],
        &[("PROTOCOL_URL", url.as_str())],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("401"), "{out:?}");
}
