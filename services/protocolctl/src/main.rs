//! `protocolctl`: the rule-set author's tool.
//!
//! Offline, with the very engine the server runs: `validate` (the server's messages, with path,
//! line and "did you mean"), `test` (scenario files against a rule-set folder, TAP output),
//! `eval` (one decision) and `diff` (the semantic diff: each change tighter, looser or
//! neutral). Online, through the REST admin API (`PROTOCOL_URL`, key in `PROTOCOL_API_KEY`):
//! `publish`, `activate` and `rollback` (compare-and-set by default), `versions`, and
//! `diff --remote` against the active version. Exit status: 0 success, 1 a finding (invalid
//! document, failed scenario, refused request, a loosening with `--fail-on-loosen`, an error
//! from the server), 2 wrong usage.

mod diff;
mod eval;
mod files;
mod offline;
mod online;
mod remote;
mod scenarios;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "protocolctl",
    version,
    about = "Validate, test, evaluate, diff and publish treatment-protocol rule sets"
)]
struct Cli {
    /// The server, for publish, activate, rollback, versions and `diff --remote`.
    #[arg(
        long,
        global = true,
        env = "PROTOCOL_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The API key (scope `admin`, or `platform` for the base), sent as a bearer token.
    #[arg(long, global = true, env = "PROTOCOL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum OutputFormat {
    #[default]
    Human,
    Json,
}

/// The guard at the point of effect: a move that loosens what any clinic is served needs an
/// approval of exactly its loosenings, from another API key than the publisher's.
#[derive(clap::Args, Debug)]
struct GuardArgs {
    /// Show what the move would change for every rule set served (and the digest of its
    /// loosenings to approve), and move nothing.
    #[arg(long, conflicts_with = "approve")]
    dry_run: bool,
    /// Approve the loosenings whose digest a dry run (or a refusal) named.
    #[arg(long, requires_all = ["reason", "approver"])]
    approve: Option<String>,
    /// Why serving the looser rules is right (with --approve).
    #[arg(long, requires = "approve")]
    reason: Option<String>,
    /// Who approves it, as staff know them (with --approve).
    #[arg(long, requires = "approve")]
    approver: Option<String>,
}

impl GuardArgs {
    /// The request fields it adds (`dry_run`, `approval`).
    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({});
        if self.dry_run {
            body["dry_run"] = serde_json::json!(true);
        }
        if let Some(digest) = &self.approve {
            body["approval"] = serde_json::json!({
                "reason": self.reason.clone().unwrap_or_default(),
                "approver": self.approver.clone().unwrap_or_default(),
                "loosenings": digest,
            });
        }
        body
    }
}

/// Where the base of the overlays under test comes from, when not from the rule-set folder.
#[derive(clap::Args, Debug)]
struct BaseArgs {
    /// The base the overlays extend (replaces a base of the same id in the folder).
    #[arg(long, conflicts_with = "server_base")]
    base: Option<PathBuf>,
    /// Read the base from the server: the active version of this rule set (PROTOCOL_URL,
    /// PROTOCOL_API_KEY; a clinic key may read the base its overlay extends).
    #[arg(long, value_name = "ID")]
    server_base: Option<String>,
}

impl BaseArgs {
    /// The base file to use: `--base`, or the server's active base fetched to a temporary file.
    fn resolve(
        &self,
        remote: impl Fn() -> anyhow::Result<remote::Remote>,
    ) -> anyhow::Result<Option<PathBuf>> {
        match (&self.base, &self.server_base) {
            (Some(b), _) => Ok(Some(b.clone())),
            (None, Some(id)) => Ok(Some(fetch_base(&remote()?, id)?)),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check rule-set files or folders exactly as the server loads them.
    Validate(offline::ValidateArgs),
    /// Run scenario files (docs/authoring.md) against a rule-set folder; TAP output.
    Test(offline::TestArgs),
    /// Answer one request offline, as the server would for that clinic.
    Eval(offline::EvalArgs),
    /// The semantic difference between two versions: each change tighter, looser or neutral.
    Diff(offline::DiffArgs),
    /// Publish a version (validated by the server; a loosening must be declared).
    Publish(online::PublishArgs),
    /// Activate a published version (compare-and-set on the version active now).
    Activate(online::ActivateArgs),
    /// What activating a version would change, and move nothing (`activate --dry-run`): the
    /// semantic diff for every rule set served and, when the server keeps a decision log, how
    /// many of each affected clinic's latest logged decisions would be answered differently.
    Impact(online::ImpactArgs),
    /// Return to the version active before the current one (compare-and-set).
    Rollback(online::RollbackArgs),
    /// The published versions of a rule set, the active one marked, with declared loosenings.
    Versions(online::VersionsArgs),
    /// The activation history: every activate, rollback and seeding, with what it changed for
    /// each rule set served and any approval.
    History(online::HistoryArgs),
    /// Retire a version never activated (its document is deleted, its name stays reserved).
    Retire(online::RetireArgs),
    /// Write a stored version's document (JSON, as the server canonicalised it) to a file: the
    /// active version by default. A clinic key may pull the active base its overlay extends, to
    /// validate, test and diff against what the server serves (`--base FILE`).
    Pull(online::PullArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("protocolctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs a command; `Ok(false)` is a finding (exit 1) already reported.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let remote = || remote::Remote::new(&cli.url, cli.api_key.clone());
    match &cli.command {
        Command::Validate(args) => args.run(remote),
        Command::Test(args) => args.run(remote),
        Command::Eval(args) => args.run(remote),
        Command::Diff(args) => args.run(remote),
        Command::Publish(args) => args.run(remote),
        Command::Activate(args) => args.run(remote),
        Command::Impact(args) => args.run(remote),
        Command::Rollback(args) => args.run(remote),
        Command::Versions(args) => args.run(remote),
        Command::History(args) => args.run(remote),
        Command::Retire(args) => args.run(remote),
        Command::Pull(args) => args.run(remote),
    }
}

/// `--server-base ID`: the server's active version of `ID`, written to a file in the temporary
/// folder that the local checks read as `--base` (they compile exactly as with a local file).
fn fetch_base(r: &remote::Remote, id: &str) -> anyhow::Result<PathBuf> {
    let version = r.active(id)?.ok_or_else(|| {
        anyhow::anyhow!("rule set '{id}' has no active version on the server: give --base FILE")
    })?;
    let doc = r.document(id, &version)?;
    let path = std::env::temp_dir().join(format!(
        "protocolctl-{}-{id}-{version}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_string(&doc)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
