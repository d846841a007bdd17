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
mod remote;
mod scenarios;
mod validate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use protocol_engine::diff::Side;

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
    Validate {
        /// Files (`.yaml`, `.json`) or folders (with `clinics/`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The base an overlay extends, when it is not among the paths nor beside the overlay.
        #[arg(long, conflicts_with = "server_base")]
        base: Option<PathBuf>,
        /// Read the base from the server instead: the active version of this rule set
        /// (PROTOCOL_URL, PROTOCOL_API_KEY; a clinic key may read the base its overlay extends).
        #[arg(long, value_name = "ID")]
        server_base: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Run scenario files (docs/authoring.md) against a rule-set folder; TAP output.
    Test {
        /// The folder of scenario files (`clients.yaml` beside them holds the client presets).
        dir: PathBuf,
        /// The rule-set folder (base and `clinics/`), or one overlay file.
        #[arg(long, default_value = "rulesets")]
        rulesets: PathBuf,
        #[command(flatten)]
        base: BaseArgs,
        /// Client presets, when not `DIR/clients.yaml`.
        #[arg(long)]
        clients: Option<PathBuf>,
    },
    /// Answer one request offline, as the server would for that clinic.
    Eval {
        /// The request body (JSON), as POSTed to the server.
        request: PathBuf,
        /// The rule-set folder (base and `clinics/`), or one overlay file.
        #[arg(long, default_value = "rulesets")]
        rulesets: PathBuf,
        #[command(flatten)]
        base: BaseArgs,
        /// The clinic (its overlay's rule-set id); the base when absent or without an overlay.
        #[arg(long)]
        clinic: Option<String>,
        /// Which question the request asks.
        #[arg(long, value_enum, default_value = "eligibility")]
        check: eval::Check,
        /// Explain the decision: each rule's condition tree with every node's result and the
        /// values it read (as `explain: true` on the server); not for plans.
        #[arg(long)]
        explain: bool,
    },
    /// The semantic difference between two versions: each change tighter, looser or neutral.
    Diff {
        /// The old version (a file); with `--remote`, leave it out: the server's active version.
        old: PathBuf,
        /// The new version (a file).
        new: Option<PathBuf>,
        /// Compare NEW (given as the only path) with the version active on the server.
        #[arg(long)]
        remote: bool,
        /// The base both versions of an overlay are compiled on, when not beside them.
        #[arg(long, conflicts_with = "server_base")]
        base: Option<PathBuf>,
        /// Compile them on the server's active version of this base instead.
        #[arg(long, value_name = "ID")]
        server_base: Option<String>,
        /// Exit 1 when any change loosens.
        #[arg(long)]
        fail_on_loosen: bool,
        /// Every grid cell on its own line (by default, one line per edited entry, its cells
        /// counted); JSON always lists every change.
        #[arg(long)]
        verbose: bool,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Publish a version (validated by the server; a loosening must be declared).
    Publish { file: PathBuf },
    /// Activate a published version (compare-and-set on the version active now).
    Activate {
        id: String,
        version: String,
        /// The version you expect to be active (default: read it first).
        #[arg(long, conflicts_with = "no_check")]
        expected_current: Option<String>,
        /// Last writer wins: no compare-and-set (not recommended).
        #[arg(long)]
        no_check: bool,
        #[command(flatten)]
        guard: GuardArgs,
    },
    /// What activating a version would change, and move nothing (`activate --dry-run`): the
    /// semantic diff for every rule set served and, when the server keeps a decision log, how
    /// many of each affected clinic's latest logged decisions would be answered differently.
    Impact {
        id: String,
        version: String,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Return to the version active before the current one (compare-and-set).
    Rollback {
        id: String,
        /// An earlier version on the line of activations.
        #[arg(long)]
        to: Option<String>,
        /// The version you expect to be active (default: read it first).
        #[arg(long)]
        expected_current: Option<String>,
        #[command(flatten)]
        guard: GuardArgs,
    },
    /// The published versions of a rule set, the active one marked, with declared loosenings.
    Versions {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// The activation history: every activate, rollback and seeding, with what it changed for
    /// each rule set served and any approval.
    History {
        id: String,
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Retire a version never activated (its document is deleted, its name stays reserved).
    Retire { id: String, version: String },
    /// Write a stored version's document (JSON, as the server canonicalised it) to a file: the
    /// active version by default. A clinic key may pull the active base its overlay extends, to
    /// validate, test and diff against what the server serves (`--base FILE`).
    Pull {
        id: String,
        /// A published version (default: the active one).
        #[arg(long)]
        version: Option<String>,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
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
        Command::Validate {
            paths,
            base,
            server_base,
            format,
        } => {
            let fetched = match server_base {
                Some(id) => Some(fetch_base(&remote()?, id)?),
                None => None,
            };
            let report = validate::run(paths, fetched.as_deref().or(base.as_deref()))?;
            match format {
                OutputFormat::Json => print_json(&report)?,
                OutputFormat::Human => print!("{}", validate::human(&report)),
            }
            Ok(report.valid)
        }
        Command::Test {
            dir,
            rulesets,
            base,
            clients,
        } => {
            let base = base.resolve(remote)?;
            let mut out = std::io::stdout().lock();
            let failed =
                scenarios::run(dir, rulesets, base.as_deref(), clients.as_deref(), &mut out)?;
            out.flush()?;
            Ok(failed == 0)
        }
        Command::Eval {
            request,
            rulesets,
            base,
            clinic,
            check,
            explain,
        } => match eval::run(
            request,
            rulesets,
            base.resolve(remote)?.as_deref(),
            clinic.as_deref(),
            *check,
            *explain,
        )? {
            Ok(answer) => {
                print_json(&answer)?;
                Ok(true)
            }
            Err(e) => {
                for v in &e.violations {
                    eprintln!("{}: {}", v.field, v.message);
                }
                Ok(false)
            }
        },
        Command::Diff {
            old,
            new,
            remote: against_server,
            base,
            server_base,
            fail_on_loosen,
            verbose,
            format,
        } => {
            let fetched = match server_base {
                Some(id) => Some(fetch_base(&remote()?, id)?),
                None => None,
            };
            let base = fetched.as_deref().or(base.as_deref());
            let (old_doc, old_base, new_doc, new_base) = match (new, *against_server) {
                (Some(new), false) => {
                    let (o, ob) = files::load_with_base(old, base)?;
                    let (n, nb) = files::load_with_base(new, base)?;
                    (o, ob, n, nb)
                }
                (None, true) => {
                    // The only path is the new version; the old one is the server's.
                    let (n, nb) = files::load_with_base(old, base)?;
                    let o = remote()?.active_document(&n.id)?;
                    (o, nb.clone(), n, nb)
                }
                (Some(_), true) => bail!("with --remote, give only the new version"),
                (None, false) => bail!("give the old and the new version (or --remote NEW)"),
            };
            let d = protocol_engine::diff::diff(
                Side {
                    doc: &old_doc,
                    base: old_base.as_ref(),
                },
                Side {
                    doc: &new_doc,
                    base: new_base.as_ref(),
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("both versions must be valid to be compared (see `protocolctl validate`)")?;
            match format {
                OutputFormat::Json => print_json(&d)?,
                OutputFormat::Human => print!("{}", diff::human(&d, *verbose)),
            }
            Ok(!(*fail_on_loosen && d.is_looser()))
        }
        Command::Publish { file } => {
            let published = remote()?.publish(file)?;
            println!(
                "published {} {} ({}){}",
                published["id"].as_str().unwrap_or_default(),
                published["version"].as_str().unwrap_or_default(),
                published["digest"].as_str().unwrap_or_default(),
                if published["created"] == false {
                    ", already published with this content"
                } else {
                    ""
                }
            );
            Ok(true)
        }
        Command::Activate {
            id,
            version,
            expected_current,
            no_check,
            guard,
        } => {
            let r = remote()?;
            let expected = match expected_current {
                Some(v) => Some(v.clone()),
                None if *no_check => None,
                None => r.active(id)?,
            };
            let a = r.activate(id, version, expected, *no_check, &guard.body())?;
            let verb = if guard.dry_run {
                "would activate"
            } else {
                "activated"
            };
            println!(
                "{verb} {} {} (was {})",
                a["id"].as_str().unwrap_or(id),
                a["version"].as_str().unwrap_or(version),
                a["previous"].as_str().unwrap_or("none")
            );
            print!("{}", remote::impact_human(&a));
            Ok(true)
        }
        Command::Impact {
            id,
            version,
            format,
        } => {
            let r = remote()?;
            let expected = r.active(id)?;
            let body = serde_json::json!({"dry_run": true});
            let a = r.activate(id, version, expected, false, &body)?;
            match format {
                OutputFormat::Json => print_json(&a)?,
                OutputFormat::Human => {
                    println!(
                        "would activate {} {} (was {})",
                        a["id"].as_str().unwrap_or(id),
                        a["version"].as_str().unwrap_or(version),
                        a["previous"].as_str().unwrap_or("none")
                    );
                    print!("{}", remote::impact_human(&a));
                }
            }
            Ok(true)
        }
        Command::Rollback {
            id,
            to,
            expected_current,
            guard,
        } => {
            let r = remote()?;
            let expected = match expected_current {
                Some(v) => Some(v.clone()),
                None => r.active(id)?,
            };
            let a = r.rollback(id, to.as_deref(), expected, &guard.body())?;
            let verb = if guard.dry_run {
                "would roll back"
            } else {
                "rolled back"
            };
            println!(
                "{verb} {} to {} (was {})",
                a["id"].as_str().unwrap_or(id),
                a["version"].as_str().unwrap_or_default(),
                a["previous"].as_str().unwrap_or("none")
            );
            print!("{}", remote::impact_human(&a));
            Ok(true)
        }
        Command::Versions { id, format } => {
            let v = remote()?.versions(id)?;
            match format {
                OutputFormat::Json => print_json(&v)?,
                OutputFormat::Human => print!("{}", remote::versions_human(&v)),
            }
            Ok(true)
        }
        Command::History { id, format } => {
            let h = remote()?.history(id)?;
            match format {
                OutputFormat::Json => print_json(&h)?,
                OutputFormat::Human => print!("{}", remote::history_human(&h)),
            }
            Ok(true)
        }
        Command::Retire { id, version } => {
            let r = remote()?.retire(id, version)?;
            println!(
                "retired {} {} ({}); its name stays reserved",
                r["id"].as_str().unwrap_or(id),
                r["version"].as_str().unwrap_or(version),
                r["digest"].as_str().unwrap_or_default()
            );
            Ok(true)
        }
        Command::Pull { id, version, out } => {
            let r = remote()?;
            let version = match version {
                Some(v) => v.clone(),
                None => r.active(id)?.ok_or_else(|| {
                    anyhow::anyhow!(
                        "rule set '{id}' has no active version on the server: name one with --version"
                    )
                })?,
            };
            let doc = r.document(id, &version)?;
            let text = format!("{}\n", serde_json::to_string_pretty(&doc)?);
            match out {
                Some(path) => {
                    std::fs::write(path, text)
                        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
                    eprintln!("pulled {id} {version} to {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(true)
        }
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
