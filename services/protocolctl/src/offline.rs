//! The offline commands, with the very engine the server runs: `validate`, `test`, `eval` and
//! `diff`. Each is its arguments and a `run` that reports what it found; the server is only asked
//! for a base (`--server-base`) or, with `diff --remote`, the active version.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use protocol_engine::RuleSetDoc;
use protocol_engine::diff::Side;

use crate::remote::Remote;
use crate::{
    BaseArgs, OutputFormat, diff, eval, fetch_base, files, print_json, scenarios, validate,
};

/// `validate`: check rule-set files or folders exactly as the server loads them.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
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
}

impl ValidateArgs {
    /// Prints the report; `Ok(false)` when any document is invalid.
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let fetched = fetch_server_base(&remote, self.server_base.as_deref())?;
        let report = validate::run(&self.paths, fetched.as_deref().or(self.base.as_deref()))?;
        match self.format {
            OutputFormat::Json => print_json(&report)?,
            OutputFormat::Human => print!("{}", validate::human(&report)),
        }
        Ok(report.valid)
    }
}

/// `test`: run scenario files against a rule-set folder; TAP output.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
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
}

impl TestArgs {
    /// Writes the TAP report to standard output; `Ok(false)` when any scenario failed.
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let base = self.base.resolve(remote)?;
        let mut out = std::io::stdout().lock();
        let failed = scenarios::run(
            &self.dir,
            &self.rulesets,
            base.as_deref(),
            self.clients.as_deref(),
            &mut out,
        )?;
        out.flush()?;
        Ok(failed == 0)
    }
}

/// `eval`: answer one request offline, as the server would for that clinic.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
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
}

impl EvalArgs {
    /// Prints the answer as JSON, or the request's faults (one per field) on standard error and
    /// `Ok(false)`.
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        match eval::run(
            &self.request,
            &self.rulesets,
            self.base.resolve(remote)?.as_deref(),
            self.clinic.as_deref(),
            self.check,
            self.explain,
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
        }
    }
}

/// `diff`: the semantic difference between two versions.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
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
}

/// Both sides of a diff: each version's document and the base it compiles on.
struct Versions {
    old: (RuleSetDoc, Option<RuleSetDoc>),
    new: (RuleSetDoc, Option<RuleSetDoc>),
}

impl DiffArgs {
    /// Prints the diff; `Ok(false)` when a change loosens and `--fail-on-loosen` asks for exit 1.
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let fetched = fetch_server_base(&remote, self.server_base.as_deref())?;
        let base = fetched.as_deref().or(self.base.as_deref());
        let Versions {
            old: (old_doc, old_base),
            new: (new_doc, new_base),
        } = self.load(base, &remote)?;
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
        match self.format {
            OutputFormat::Json => print_json(&d)?,
            OutputFormat::Human => print!("{}", diff::human(&d, self.verbose)),
        }
        Ok(!(self.fail_on_loosen && d.is_looser()))
    }

    /// The two versions compared: two files, or (`--remote`) the one file against the server's
    /// active version.
    fn load(
        &self,
        base: Option<&Path>,
        remote: impl Fn() -> anyhow::Result<Remote>,
    ) -> anyhow::Result<Versions> {
        match (&self.new, self.remote) {
            (Some(new), false) => Ok(Versions {
                old: files::load_with_base(&self.old, base)?,
                new: files::load_with_base(new, base)?,
            }),
            (None, true) => {
                // The only path is the new version; the old one is the server's.
                let (n, nb) = files::load_with_base(&self.old, base)?;
                let o = remote()?.active_document(&n.id)?;
                Ok(Versions {
                    old: (o, nb.clone()),
                    new: (n, nb),
                })
            }
            (Some(_), true) => bail!("with --remote, give only the new version"),
            (None, false) => bail!("give the old and the new version (or --remote NEW)"),
        }
    }
}

/// `--server-base ID` of `validate` and `diff`: the server's active version of `ID` fetched to a
/// file, or none when not given.
fn fetch_server_base(
    remote: impl Fn() -> anyhow::Result<Remote>,
    server_base: Option<&str>,
) -> anyhow::Result<Option<PathBuf>> {
    match server_base {
        Some(id) => Ok(Some(fetch_base(&remote()?, id)?)),
        None => Ok(None),
    }
}
