//! The online commands, through the REST admin API (`PROTOCOL_URL`, key in `PROTOCOL_API_KEY`):
//! `publish`, `activate` (and its dry run, `impact`), `rollback`, `versions`, `history`, `retire`
//! and `pull`. Each is its arguments and a `run` that prints what the server answered; a refused
//! request is an error (exit 1).

use std::path::PathBuf;

use crate::remote::{self, Remote};
use crate::{GuardArgs, OutputFormat, print_json};

/// `publish`: publish a version (validated by the server; a loosening must be declared).
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    file: PathBuf,
}

impl PublishArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let published = remote()?.publish(&self.file)?;
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
}

/// `activate`: activate a published version (compare-and-set on the version active now).
#[derive(clap::Args, Debug)]
pub struct ActivateArgs {
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
}

impl ActivateArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let (id, version) = (&self.id, &self.version);
        let r = remote()?;
        let expected = match &self.expected_current {
            Some(v) => Some(v.clone()),
            None if self.no_check => None,
            None => r.active(id)?,
        };
        let a = r.activate(id, version, expected, self.no_check, &self.guard.body())?;
        let verb = if self.guard.dry_run {
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
}

/// `impact`: what activating a version would change (`activate --dry-run`), moving nothing.
#[derive(clap::Args, Debug)]
pub struct ImpactArgs {
    id: String,
    version: String,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

impl ImpactArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let (id, version) = (&self.id, &self.version);
        let r = remote()?;
        let expected = r.active(id)?;
        let body = serde_json::json!({"dry_run": true});
        let a = r.activate(id, version, expected, false, &body)?;
        match self.format {
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
}

/// `rollback`: return to the version active before the current one (compare-and-set).
#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    id: String,
    /// An earlier version on the line of activations.
    #[arg(long)]
    to: Option<String>,
    /// The version you expect to be active (default: read it first).
    #[arg(long)]
    expected_current: Option<String>,
    #[command(flatten)]
    guard: GuardArgs,
}

impl RollbackArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let id = &self.id;
        let r = remote()?;
        let expected = match &self.expected_current {
            Some(v) => Some(v.clone()),
            None => r.active(id)?,
        };
        let a = r.rollback(id, self.to.as_deref(), expected, &self.guard.body())?;
        let verb = if self.guard.dry_run {
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
}

/// `versions`: the published versions of a rule set, the active one marked.
#[derive(clap::Args, Debug)]
pub struct VersionsArgs {
    id: String,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

impl VersionsArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let v = remote()?.versions(&self.id)?;
        match self.format {
            OutputFormat::Json => print_json(&v)?,
            OutputFormat::Human => print!("{}", remote::versions_human(&v)),
        }
        Ok(true)
    }
}

/// `history`: the activation history of a rule set.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    id: String,
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

impl HistoryArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let h = remote()?.history(&self.id)?;
        match self.format {
            OutputFormat::Json => print_json(&h)?,
            OutputFormat::Human => print!("{}", remote::history_human(&h)),
        }
        Ok(true)
    }
}

/// `retire`: retire a version never activated.
#[derive(clap::Args, Debug)]
pub struct RetireArgs {
    id: String,
    version: String,
}

impl RetireArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let (id, version) = (&self.id, &self.version);
        let r = remote()?.retire(id, version)?;
        println!(
            "retired {} {} ({}); its name stays reserved",
            r["id"].as_str().unwrap_or(id),
            r["version"].as_str().unwrap_or(version),
            r["digest"].as_str().unwrap_or_default()
        );
        Ok(true)
    }
}

/// `pull`: write a stored version's document to a file (the active version by default).
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    id: String,
    /// A published version (default: the active one).
    #[arg(long)]
    version: Option<String>,
    /// Where to write it (default: standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

impl PullArgs {
    pub fn run(&self, remote: impl Fn() -> anyhow::Result<Remote>) -> anyhow::Result<bool> {
        let id = &self.id;
        let r = remote()?;
        let version = match &self.version {
            Some(v) => v.clone(),
            None => r.active(id)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "rule set '{id}' has no active version on the server: name one with --version"
                )
            })?,
        };
        let doc = r.document(id, &version)?;
        let text = format!("{}\n", serde_json::to_string_pretty(&doc)?);
        match &self.out {
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
