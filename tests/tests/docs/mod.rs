//! The documentation runs as written: every shell block of README.md and docs/*.md says how it
//! runs ([`blocks`]: a marker before it), and each block that can run here is run with bash, as a
//! reader pastes it, with only the adaptations [`shell`] lists; it must exit 0 and print what the
//! page shows (`# …` lines after a command). A block that cannot run here says why, and is not run.
//!
//! - [`authoring`]: docs/authoring.md's walk-through and `$` transcripts against a real Redis.

mod authoring;
mod blocks;
mod shell;

use std::collections::BTreeMap;

use blocks::{Block, How};
use protocol_tests::ServerBuilder;

/// Every shell block of every page.
fn all_blocks() -> Vec<Block> {
    blocks::pages()
        .iter()
        .flat_map(|p| blocks::blocks(p))
        .collect()
}

/// The chains of runnable blocks: a block that does not continue another starts one; `after`
/// blocks get the block they name in front. Faults in how blocks chain are `Err`, each named:
/// a `continues` whose block before it on the page is not run, an `after` naming a block that
/// is not `alone`, an `in` test that does not name the page.
fn chains(all: &[Block]) -> Result<Vec<Vec<&Block>>, Vec<String>> {
    let mut out: Vec<Vec<&Block>> = Vec::new();
    let mut faults = Vec::new();
    for (i, block) in all.iter().enumerate() {
        match &block.how {
            Ok(How::Continues) => {
                let before = i.checked_sub(1).and_then(|j| all.get(j));
                let runs_before = before.is_some_and(|b| {
                    b.page == block.page
                        && matches!(
                            b.how,
                            Ok(How::Server | How::Alone | How::Continues | How::After { .. })
                        )
                });
                match out.last_mut() {
                    Some(chain) if runs_before => chain.push(block),
                    _ => faults.push(format!(
                        "{}: `continues`, but the block before it on the page is not run",
                        block.at()
                    )),
                }
            }
            Ok(How::After { page, heading }) => {
                match all
                    .iter()
                    .find(|b| &b.page == page && &b.heading == heading)
                {
                    Some(first) if first.how == Ok(How::Alone) => out.push(vec![first, block]),
                    Some(first) => faults.push(format!(
                        "{}: `after {page}#{heading}` names {}, which is not `alone`",
                        block.at(),
                        first.at()
                    )),
                    None => faults.push(format!("{}: no block under {page}#{heading}", block.at())),
                }
            }
            Ok(How::Server | How::Alone) => out.push(vec![block]),
            Ok(How::Elsewhere(test)) => {
                let text = std::fs::read_to_string(protocol_tests::workspace_root().join(test))
                    .unwrap_or_default();
                if !text.contains(&block.page) {
                    faults.push(format!(
                        "{}: `in {test}`, which does not name {}",
                        block.at(),
                        block.page
                    ));
                }
            }
            Ok(How::Never(_)) | Err(_) => {}
        }
    }
    if faults.is_empty() {
        Ok(out)
    } else {
        Err(faults)
    }
}

/// Runs a chain with the docs' ports mapped by `ports`; what went wrong, if anything.
fn check(chain: &[&Block], ports: &BTreeMap<u16, u16>) -> Option<String> {
    let ran = shell::run(&shell::script(chain, ports));
    let at = chain.last().map(|b| b.at()).unwrap_or_default();
    let failure = if ran.code != Some(0) {
        format!("exit {:?}", ran.code)
    } else if let Some((i, code)) = shell::failed_call(chain, &ran.stderr) {
        format!(
            "a call of {} was answered {code} (a block that shows an error says `; errors shown`)",
            chain.get(i).map(|b| b.at()).unwrap_or_default()
        )
    } else if let Some(line) = shell::missing(chain, &ran.stdout) {
        format!("does not print {line}")
    } else {
        return None;
    };
    Some(format!(
        "== {at}: {failure}\n--- script\n{}\n--- stdout\n{}\n--- stderr\n{}",
        ran.script,
        tail(&ran.stdout),
        tail(&ran.stderr)
    ))
}

/// The last lines of an output, enough to see what failed.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

#[test]
fn every_shell_block_says_how_it_runs() {
    let all = all_blocks();
    assert!(all.len() > 40, "the docs' shell blocks: {}", all.len());
    let unmarked: Vec<String> = all
        .iter()
        .filter_map(|b| b.how.as_ref().err().map(|e| format!("{}: {e}", b.at())))
        .collect();
    assert!(unmarked.is_empty(), "{}", unmarked.join("\n"));
    if let Err(faults) = chains(&all) {
        panic!("{}", faults.join("\n"));
    }
}

#[test]
fn the_blocks_on_the_default_server_run_as_written() {
    // Not beside the tests that assert a deadline: the chains load the machine.
    let _serial = crate::with_redis::common::serial_blocking();
    let server = ServerBuilder::new().spawn().expect("server");
    let port = |url: String| {
        url.rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
            .expect("port")
    };
    let ports = BTreeMap::from([
        (8080, port(server.url(""))),
        (50051, port(server.grpc_url())),
    ]);
    let all = all_blocks();
    let failures: Vec<String> = chains(&all)
        .expect("blocks chain (every_shell_block_says_how_it_runs)")
        .iter()
        .filter(|c| c[0].how == Ok(How::Server))
        .filter_map(|c| check(c, &ports))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_blocks_that_start_what_they_need_run_as_written() {
    let _serial = crate::with_redis::common::serial_blocking();
    let all = all_blocks();
    let failures: Vec<String> = chains(&all)
        .expect("blocks chain (every_shell_block_says_how_it_runs)")
        .iter()
        .filter(|c| c[0].how != Ok(How::Server))
        .filter_map(|c| check(c, &shell::free_ports()))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
