//! The deployment files, run: the real binary started with the environment each deployment gives
//! it (the docker-compose replicas, and the pod of every kustomization in `deploy/k8s`, rendered
//! with `kubectl kustomize`), with its rule sets and API keys laid out as the container sees them.
//!
//! `scripts/check-deploy` checks the files themselves (schemas, wiring, names against
//! docs/configuration.md) and never runs the binary; these tests close the loop: the settings the
//! docs list are exactly the binary's, and each deployment's environment starts a server that is
//! healthy, ready with the repository's rule sets, guarded by its API keys and stopped cleanly by
//! SIGTERM. Redis and the OTLP export are left out: neither runs here.
//!
//! kubectl is the one `scripts/test` installs (`KUBECTL`), else the check-deploy venv's, else one on
//! `PATH`; without any, the Kubernetes half is skipped with a note (plain `cargo test` on a fresh
//! machine), never under `scripts/test`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use protocol_tests::{ServerBuilder, server_binary, workspace_root};
use reqwest::StatusCode;
use serde_json::Value;

use crate::api::common::http;

type Env = BTreeMap<String, String>;

// === settings ===

/// `PROTOCOL_*` name → default, from clap's `--help` (`[env: NAME=]`, then `[default: v]`).
fn settings_from_help(help: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in help.lines().map(str::trim) {
        if line.starts_with('-') {
            current = None;
        } else if let Some(rest) = line.strip_prefix("[env: ") {
            // `[env: NAME=value]`, or `[env: NAME]` for a setting whose value is hidden (a secret).
            let name = rest.split(['=', ']']).next().unwrap_or_default().to_owned();
            if name.starts_with("PROTOCOL_") {
                out.insert(name.clone(), None);
                current = Some(name);
            }
        } else if let (Some(name), Some(rest)) = (&current, line.strip_prefix("[default: ")) {
            out.insert(name.clone(), Some(rest.trim_end_matches(']').to_owned()));
        }
    }
    out
}

/// `PROTOCOL_*` name → default, from the table of docs/configuration.md (`` `v` ``, or none).
fn settings_from_docs(text: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Some(name) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
        else {
            continue;
        };
        if !name.starts_with("PROTOCOL_") {
            continue;
        }
        let default = cells
            .get(2)
            .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
            .map(str::to_owned);
        out.insert(name.to_owned(), default);
    }
    out
}

/// The deploy files are checked against docs/configuration.md (scripts/check-deploy); this is
/// what makes that the binary's truth: the same names, the same defaults.
#[test]
fn docs_list_exactly_the_settings_and_defaults_of_the_binary() {
    let out = Command::new(server_binary().expect("binary"))
        .arg("--help")
        .env_clear()
        .output()
        .expect("--help runs");
    assert!(out.status.success(), "--help exits {}", out.status);
    let help = settings_from_help(&String::from_utf8_lossy(&out.stdout));
    let docs = settings_from_docs(
        &std::fs::read_to_string(workspace_root().join("docs/configuration.md")).expect("docs"),
    );
    assert!(help.contains_key("PROTOCOL_HTTP_ADDR"), "{help:?}");
    assert_eq!(
        help, docs,
        "--help (left) and docs/configuration.md (right) must list the same PROTOCOL_* settings and defaults"
    );
}

// === running a deployment's environment ===

/// The tokens written above each key in a keys file (`# demo token: T`, `# example token: T`).
fn documented_tokens(keys_file: &str) -> Vec<String> {
    keys_file
        .lines()
        .filter_map(|line| {
            let comment = line.split_once('#')?.1.trim_start();
            let comment = comment
                .strip_prefix("demo ")
                .or_else(|| comment.strip_prefix("example "))
                .unwrap_or(comment);
            let token = comment.strip_prefix("token:")?.split_whitespace().next()?;
            Some(token.to_owned())
        })
        .collect()
}

/// The rule-set ids of the repository's `rulesets/` (what every deployment must serve).
fn repository_ruleset_ids() -> BTreeSet<String> {
    let root = workspace_root().join("rulesets");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.clone(), root.join("clinics")] {
        for entry in std::fs::read_dir(dir).expect("rulesets/").flatten() {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                files.push(entry.path());
            }
        }
    }
    files
        .iter()
        .filter_map(|p| {
            let doc: Value = serde_saphyr::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            doc.get("id")?.as_str().map(str::to_owned)
        })
        .collect()
}

/// Starts the binary with a deployment's environment (addresses moved to free loopback ports,
/// JSON logs so the harness reads them back; Redis and OTLP left out), then probes it and stops it
/// with SIGTERM.
async fn run_deployment(where_: &str, env: &Env, tokens: &[String]) {
    let mut builder = ServerBuilder::new();
    for (k, v) in env {
        let dropped = k.starts_with("OTEL_")
            || matches!(
                k.as_str(),
                "PROTOCOL_REDIS_URL"
                    | "PROTOCOL_HTTP_ADDR"
                    | "PROTOCOL_GRPC_ADDR"
                    | "PROTOCOL_LOG_FORMAT"
            );
        if !dropped {
            builder = builder.env(k, v);
        }
    }
    let mut server = builder
        .spawn()
        .unwrap_or_else(|e| panic!("{where_}: the binary starts with this environment: {e:#}"));
    let client = http();

    let res = client
        .get(server.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(res.status(), StatusCode::OK, "{where_}: GET /readyz");
    let ready: Value = res.json().await.expect("readyz body");
    // Without a key /readyz names the base rule sets and counts the clinic overlays (their ids
    // name clinics).
    let bases: BTreeSet<String> = ready["rulesets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let overlays = ready["overlays"].as_u64().unwrap_or_default();
    let want = repository_ruleset_ids();
    assert!(
        bases.is_subset(&want)
            && u64::try_from(want.len()).unwrap_or_default()
                == u64::try_from(bases.len()).unwrap_or_default() + overlays,
        "{where_}: /readyz serves the mounted rule sets {want:?}, it names {bases:?} and counts \
         {overlays} overlays"
    );
    assert!(
        TcpStream::connect_timeout(&server.grpc, Duration::from_secs(3)).is_ok(),
        "{where_}: the gRPC listener accepts connections"
    );

    let treatments = |token: Option<&str>| {
        let req = client.get(server.url("/v1/treatments"));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.expect("GET /v1/treatments").status() }
    };
    assert_eq!(
        treatments(None).await,
        StatusCode::UNAUTHORIZED,
        "{where_}: without a token (API keys are on)"
    );
    assert_eq!(
        treatments(Some("not-a-documented-token")).await,
        StatusCode::UNAUTHORIZED,
        "{where_}: an unknown token"
    );
    for t in tokens {
        // 200, or 403 for a key whose scopes leave out `eligibility`: either way it is known.
        let status = treatments(Some(t)).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::FORBIDDEN,
            "{where_}: the documented token {t} is a known key (GET /v1/treatments is {status})"
        );
    }

    server.terminate().expect("SIGTERM");
    let grace: u64 = env
        .get("PROTOCOL_SHUTDOWN_GRACE_SECS")
        .and_then(|g| g.parse().ok())
        .unwrap_or(20);
    let status = server
        .wait_exit(Duration::from_secs(grace + 5))
        .unwrap_or_else(|e| panic!("{where_}: stops after SIGTERM: {e:#}"));
    assert!(
        status.success(),
        "{where_}: SIGTERM stops the server cleanly; {status}; output:\n{}",
        server.output().join("\n")
    );
}

// === docker-compose ===

/// YAML scalars as the environment sees them.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_replicas_environment_runs() {
    let root = workspace_root();
    let compose: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml"),
    )
    .expect("docker-compose.yml parses");
    let services = compose["services"].as_object().expect("services");
    let replicas: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(_, s)| s["build"]["dockerfile"] == "deploy/Dockerfile")
        .collect();
    assert!(replicas.len() >= 2, "two replicas of deploy/Dockerfile");
    for (name, service) in replicas {
        let mut env: Env = service["environment"]
            .as_object()
            .expect("environment")
            .iter()
            .map(|(k, v)| (k.clone(), scalar(v)))
            .collect();
        // The image copies rulesets/ to PROTOCOL_RULESETS_DIR; the keys file is a mount.
        env.insert(
            "PROTOCOL_RULESETS_DIR".into(),
            root.join("rulesets").display().to_string(),
        );
        let target = env
            .get("PROTOCOL_API_KEYS_FILE")
            .cloned()
            .unwrap_or_default();
        let source = service["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|v| {
                let mut parts = v.split(':');
                let (src, dst) = (parts.next()?, parts.next()?);
                (dst == target).then(|| root.join(src))
            })
            .unwrap_or_else(|| panic!("{name}: PROTOCOL_API_KEYS_FILE ({target}) is mounted"));
        let keys = std::fs::read_to_string(&source).expect("keys file");
        env.insert(
            "PROTOCOL_API_KEYS_FILE".into(),
            source.display().to_string(),
        );
        run_deployment(&format!("compose {name}"), &env, &documented_tokens(&keys)).await;
    }
}

// === Kubernetes ===

/// The kubectl to render with: `KUBECTL`, else the check-deploy venv's, else one on `PATH`.
fn kubectl() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(k));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    // scripts/check-deploy keeps one venv per set of pins: `venv-<hash>`.
    let venvs = std::fs::read_dir(cache.join("treatment-protocol"))
        .into_iter()
        .flatten();
    if let Some(k) = venvs
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("venv"))
        .map(|e| e.path().join("bin/kubectl"))
        .find(|k| k.is_file())
    {
        return Some(k);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    })
}

fn render(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_saphyr::from_str_multiple(&String::from_utf8_lossy(&out.stdout)).expect("rendered YAML")
}

fn decode(b64: &str) -> String {
    let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean)
        .expect("Secret data is base64");
    String::from_utf8(bytes).expect("Secret data is text")
}

/// The data of a ConfigMap or Secret (decoded), by name.
fn data_of(objs: &[Value], kind: &str, name: &str) -> BTreeMap<String, String> {
    let obj = objs
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is in the render"));
    obj["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = scalar(v);
            (k.clone(), if kind == "Secret" { decode(&v) } else { v })
        })
        .collect()
}

/// The container's environment: `envFrom` first, then `env` entries (with `$(VAR)` expanded and
/// `valueFrom` resolved), as the kubelet builds it.
fn container_env(objs: &[Value], c: &Value) -> Env {
    let mut env = Env::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            env.extend(data_of(objs, "ConfigMap", name));
        }
        if let Some(name) = from["secretRef"]["name"].as_str() {
            env.extend(data_of(objs, "Secret", name));
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = scalar(&e["name"]);
        let value = if let Some(v) = e.get("value") {
            expand(&scalar(v), &env)
        } else if let Some(r) = e["valueFrom"].get("secretKeyRef") {
            data_of(objs, "Secret", &scalar(&r["name"]))
                .remove(&scalar(&r["key"]))
                .unwrap_or_else(|| panic!("{name}: Secret key {r} exists"))
        } else if let Some(r) = e["valueFrom"].get("configMapKeyRef") {
            data_of(objs, "ConfigMap", &scalar(&r["name"]))
                .remove(&scalar(&r["key"]))
                .unwrap_or_else(|| panic!("{name}: ConfigMap key {r} exists"))
        } else {
            // fieldRef and the like: a stand-in value of the pod.
            "protocol-server-0".to_owned()
        };
        env.insert(name, value);
    }
    env
}

/// `$(VAR)` references to variables defined before, as the kubelet expands them.
fn expand(value: &str, env: &Env) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) => {
                let var = &after[..end];
                match env.get(var) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The files a mount path shows: the volume's ConfigMap or Secret, keys mapped by `items`.
fn mounted_files(objs: &[Value], pod: &Value, c: &Value, path: &str) -> BTreeMap<String, String> {
    let mount = c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(path))
        .unwrap_or_else(|| panic!("{path} is mounted"));
    let volume = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume exists");
    let (source, data) = if let Some(cm) = volume.get("configMap") {
        (cm, data_of(objs, "ConfigMap", &scalar(&cm["name"])))
    } else if let Some(s) = volume.get("secret") {
        (s, data_of(objs, "Secret", &scalar(&s["secretName"])))
    } else {
        panic!("{path}: a ConfigMap or Secret volume")
    };
    match source["items"].as_array() {
        None => data,
        Some(items) => items
            .iter()
            .filter_map(|i| {
                let text = data.get(i["key"].as_str()?)?;
                Some((scalar(&i["path"]), text.clone()))
            })
            .collect(),
    }
}

/// Writes files under `dir` (relative paths), creating folders.
fn lay_out(dir: &Path, files: &BTreeMap<String, String>) {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folder");
        }
        std::fs::write(&path, text).expect("file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kustomization_pod_environment_runs() {
    let Some(kubectl) = kubectl() else {
        eprintln!(
            "NOTE: no kubectl (KUBECTL, the check-deploy venv, PATH): Kubernetes environments not run; scripts/test installs it"
        );
        return;
    };
    let k8s = workspace_root().join("deploy/k8s");
    let mut dirs = vec![k8s.join("base")];
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(k8s.join("overlays"))
        .expect("overlays")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    overlays.sort();
    dirs.extend(overlays);
    for dir in dirs {
        let where_ = dir
            .strip_prefix(workspace_root())
            .unwrap_or(&dir)
            .display()
            .to_string();
        let objs = render(&kubectl, &dir);
        let deployment = objs
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .unwrap_or_else(|| panic!("{where_}: a Deployment"));
        let pod = &deployment["spec"]["template"]["spec"];
        let container = pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "protocol-server")
            .unwrap_or_else(|| panic!("{where_}: container protocol-server"));
        let mut env = container_env(&objs, container);

        let layout = tempfile::tempdir().expect("temp dir");
        let rulesets_dir = env["PROTOCOL_RULESETS_DIR"].clone();
        let rulesets = layout.path().join("rulesets");
        lay_out(
            &rulesets,
            &mounted_files(&objs, pod, container, &rulesets_dir),
        );
        env.insert(
            "PROTOCOL_RULESETS_DIR".into(),
            rulesets.display().to_string(),
        );
        let keys_file = PathBuf::from(&env["PROTOCOL_API_KEYS_FILE"]);
        let keys_dir = keys_file.parent().and_then(Path::to_str).unwrap_or("/");
        let name = keys_file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let files = mounted_files(&objs, pod, container, keys_dir);
        let keys = files
            .get(name)
            .unwrap_or_else(|| panic!("{where_}: {name} is a file of the mounted Secret"))
            .clone();
        let keys_path = layout.path().join("keys").join(name);
        lay_out(
            layout.path(),
            &BTreeMap::from([(format!("keys/{name}"), keys.clone())]),
        );
        env.insert(
            "PROTOCOL_API_KEYS_FILE".into(),
            keys_path.display().to_string(),
        );
        run_deployment(&where_, &env, &documented_tokens(&keys)).await;
    }
}
