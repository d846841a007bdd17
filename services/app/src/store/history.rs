//! What a rollback returns to, read from the activation history (never from publish order).
//!
//! The history is replayed as a line of activations: an activation or seeding puts its version
//! on top of the line (unless it is already there), a rollback takes versions off until the one
//! it returned to is on top. A rollback goes one step down that line: to the version that was
//! active before the current one was activated. Rolling back twice therefore keeps going back
//! (it never returns to the version just rolled back from: that is an activation), and a version
//! rolled back from leaves the line.

use super::types::HistoryEntry;

/// Replays the history into the line of activations, oldest first; the last is the version the
/// history says is active.
pub(crate) fn line_of_activations(history: &[HistoryEntry]) -> Vec<&str> {
    let mut line: Vec<&str> = Vec::new();
    for entry in history {
        let version = entry.version.as_str();
        if entry.action == "rollback" {
            while line.last().is_some_and(|top| *top != version) {
                line.pop();
            }
            if line.is_empty() {
                line.push(version);
            }
        } else if line.last() != Some(&version) {
            line.push(version);
        }
    }
    line
}

/// Why a rollback has no target.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoTarget {
    /// The history does not end at the active version (activated before histories were kept,
    /// or the pointer was moved by something else): activate instead.
    NoHistory,
    /// The active version is the first of the line: nothing was active before it.
    First,
    /// The named version is not earlier on the line (never active, rolled back from, or the
    /// active one itself).
    NotEarlier,
}

/// The version a rollback of `current` returns to: `to_version` when it is earlier on the line,
/// else the one just below the top.
pub(crate) fn rollback_target<'h>(
    history: &'h [HistoryEntry],
    current: &str,
    to_version: Option<&str>,
) -> Result<&'h str, NoTarget> {
    let line = line_of_activations(history);
    let Some((top, earlier)) = line.split_last() else {
        return Err(NoTarget::NoHistory);
    };
    if *top != current {
        return Err(NoTarget::NoHistory);
    }
    match to_version {
        Some(v) => earlier
            .iter()
            .rev()
            .find(|e| **e == v)
            .copied()
            .ok_or(NoTarget::NotEarlier),
        None => earlier.last().copied().ok_or(NoTarget::First),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, action: &str) -> HistoryEntry {
        HistoryEntry {
            version: version.into(),
            digest: String::new(),
            at_ms: 0,
            by: None,
            previous: None,
            action: action.into(),
            effect: None,
            approval: None,
        }
    }

    #[test]
    fn rollback_follows_activations_not_publish_order() {
        let h = [
            entry("1", "seed"),
            entry("3", "activate"),
            entry("4", "activate"),
        ];
        assert_eq!(line_of_activations(&h), ["1", "3", "4"]);
        assert_eq!(rollback_target(&h, "4", None), Ok("3"));
        assert_eq!(rollback_target(&h, "4", Some("1")), Ok("1"));
        assert_eq!(
            rollback_target(&h, "4", Some("2")),
            Err(NoTarget::NotEarlier)
        );
        assert_eq!(rollback_target(&h, "3", None), Err(NoTarget::NoHistory));
    }

    #[test]
    fn rolling_back_twice_keeps_going_back() {
        let h = [
            entry("1", "seed"),
            entry("2", "activate"),
            entry("3", "activate"),
            entry("2", "rollback"),
        ];
        assert_eq!(rollback_target(&h, "2", None), Ok("1"));
        let h = [
            entry("1", "seed"),
            entry("2", "activate"),
            entry("1", "rollback"),
        ];
        assert_eq!(rollback_target(&h, "1", None), Err(NoTarget::First));
        assert_eq!(
            rollback_target(&h, "1", Some("2")),
            Err(NoTarget::NotEarlier)
        );
    }

    #[test]
    fn reactivating_the_active_version_adds_no_step() {
        let h = [
            entry("1", "seed"),
            entry("2", "activate"),
            entry("2", "activate"),
        ];
        assert_eq!(rollback_target(&h, "2", None), Ok("1"));
    }
}
