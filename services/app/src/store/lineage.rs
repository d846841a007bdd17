//! The lineage of what Redis holds active: a deployment epoch and a fleet-wide sequence.
//!
//! A Redis that lost its data (restarted without persistence, a failover to a replica that
//! missed the last writes) holds an *older* state than the replicas served, or none. If a replica
//! then seeded it from its bundled rule sets, every other replica would adopt that seed: every
//! clinic rolled back, `/readyz` ready (a red team saw it in 6 of 7 trials). So every state Redis
//! holds carries its place in a line:
//!
//! - `epoch`: made by the first seed of a deployment (a UUIDv7, so epochs sort by the time they
//!   were made) and kept by every later move;
//! - `seq`: 1 at that seed, and one more on every move of a pointer (activation, rollback).
//!
//! A replica remembers the lineage of the state it verified ([`crate::catalog::Catalog`] keeps
//! it) and, in `store::sync`, never adopts a state that ranks below it: it puts its own back
//! instead. States rank by `seq`, and at an equal `seq` the *older* epoch ranks higher: a second
//! seed (a replica seeding a Redis that lost its data) is the stale one, never the first
//! deployment's state. A Redis state without a lineage (written before lineages existed) ranks
//! below every state with one.

use std::cmp::Ordering;

/// A state's place in the line of what Redis held active.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Lineage {
    /// The deployment epoch: 32 lowercase hex digits of a UUIDv7 (so a byte order is a time order).
    pub epoch: String,
    /// Pointer moves since the epoch began (its seed is 1).
    pub seq: u64,
}

impl Lineage {
    /// The lineage of a first seed: a new epoch, `seq` 1.
    pub fn first() -> Self {
        Self {
            epoch: uuid::Uuid::now_v7().simple().to_string(),
            seq: 1,
        }
    }

    /// `epoch:seq`, for logs and `/readyz`.
    pub fn describe(&self) -> String {
        format!("{}:{}", self.epoch, self.seq)
    }
}

impl Ord for Lineage {
    /// Later in the line is greater: a higher `seq`; at an equal `seq`, the older epoch.
    fn cmp(&self, other: &Self) -> Ordering {
        self.seq
            .cmp(&other.seq)
            .then_with(|| other.epoch.cmp(&self.epoch))
    }
}

impl PartialOrd for Lineage {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a replica that verified `verified` makes of the state Redis holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Redis is at or after what the replica verified (or the replica verified nothing from a
    /// line): adopt it.
    Adopt,
    /// Redis ranks below what the replica verified: never adopt it; put the verified state back.
    Behind,
}

/// Where Redis's lineage `held` stands against the one a replica verified. `None` on either
/// side is a state without a lineage (written before lineages existed, or a replica that never
/// read one): it ranks below every lineage, and a replica that verified none adopts anything.
pub fn standing(verified: Option<&Lineage>, held: Option<&Lineage>) -> Standing {
    match (verified, held) {
        (None, _) => Standing::Adopt,
        (Some(_), None) => Standing::Behind,
        (Some(v), Some(h)) if h < v => Standing::Behind,
        (Some(_), Some(_)) => Standing::Adopt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(epoch: &str, seq: u64) -> Lineage {
        Lineage {
            epoch: epoch.into(),
            seq,
        }
    }

    #[test]
    fn a_second_seed_ranks_below_the_first_deployments_state() {
        let first = Lineage::first();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let stale_seed = Lineage::first();
        assert!(stale_seed.epoch > first.epoch, "UUIDv7 epochs sort by time");
        assert!(
            stale_seed < first,
            "equal seq: the older epoch ranks higher"
        );
        assert_eq!(standing(Some(&first), Some(&stale_seed)), Standing::Behind);
        assert_eq!(standing(Some(&stale_seed), Some(&first)), Standing::Adopt);
        // A seed always ranks below a state that has seen an activation since its own seed.
        let activated = at(&first.epoch, 17);
        assert_eq!(
            standing(Some(&activated), Some(&stale_seed)),
            Standing::Behind
        );
    }

    #[test]
    fn no_lineage_ranks_below_any_and_a_replica_without_one_adopts() {
        assert_eq!(standing(Some(&at("a", 1)), None), Standing::Behind);
        assert_eq!(standing(None, None), Standing::Adopt);
        assert_eq!(standing(None, Some(&at("a", 1))), Standing::Adopt);
    }

    proptest! {
        /// The order is total and a replica adopts exactly what does not rank below what it
        /// verified: so a replica's lineage only ever grows, whatever order it reads states in.
        #[test]
        fn adopting_never_moves_a_replica_back(
            states in proptest::collection::vec(
                (proptest::option::of("[0-9a-f]{2}"), 1u64..6),
                1..20,
            ),
        ) {
            let states: Vec<Option<Lineage>> = states
                .into_iter()
                .map(|(e, seq)| e.map(|e| at(&e, seq)))
                .collect();
            let mut verified: Option<Lineage> = None;
            for held in &states {
                if standing(verified.as_ref(), held.as_ref()) == Standing::Adopt {
                    if let (Some(v), Some(h)) = (&verified, held) {
                        prop_assert!(h >= v);
                    }
                    if held.is_some() || verified.is_none() {
                        let before = verified.clone();
                        verified = held.clone();
                        prop_assert!(before.is_none() || verified >= before);
                    }
                }
            }
            for a in &states {
                for b in &states {
                    let (Some(a), Some(b)) = (a, b) else { continue };
                    prop_assert_eq!(a.cmp(b), b.cmp(a).reverse());
                    prop_assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
                }
            }
        }
    }
}
