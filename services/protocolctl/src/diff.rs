//! `protocolctl diff OLD NEW`: the engine's semantic diff of two versions of a rule set.

use protocol_engine::diff::{Diff, Direction};

/// A heading line, then one line per edited entry (loosenings first), or with `verbose` one
/// line per change (every grid cell).
pub fn human(d: &Diff, verbose: bool) -> String {
    let count = |dir| d.changes.iter().filter(|c| c.direction == dir).count();
    let mut out = format!(
        "{} {} -> {} {}: {} change(s): {} looser, {} tighter, {} neutral\n",
        d.old.id,
        d.old.version,
        d.new.id,
        d.new.version,
        d.changes.len(),
        count(Direction::Looser),
        count(Direction::Tighter),
        count(Direction::Neutral),
    );
    if verbose {
        for c in &d.changes {
            out.push_str(&c.describe());
            out.push('\n');
        }
    } else {
        for g in d.groups() {
            out.push_str(&g.describe());
            out.push('\n');
        }
    }
    if d.is_looser() {
        out.push_str(
            "looser: publishing this over the active version needs `loosening: {reason, approved_by}`\n",
        );
    }
    out
}
