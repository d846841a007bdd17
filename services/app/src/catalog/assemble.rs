//! Building a replica's catalog from what Redis holds active, one rule set at a time.
//!
//! One bad payload must not take every clinic with it, and must never be replaced by something
//! Redis did not activate. So each active rule set is judged on its own:
//!
//! 1. the version Redis holds active, if its payload verified and it compiles (an overlay on the
//!    base chosen here);
//! 2. else the version this replica verified from Redis earlier, if it still compiles: the last
//!    good one, as a running replica always kept (the refusal is reported with what is served);
//! 3. else nothing: the rule set is refused, and its clinic answered fail-closed by
//!    [`Catalog::for_tenant`]. A refused base refuses every overlay on it.
//!
//! Never a bundled or directory rule set: those are not what Redis activated.

use std::collections::{BTreeMap, BTreeSet};

use protocol_engine::{LoadError, RuleSet, RuleSetDoc, compile};

use super::{Catalog, Origin, Refusal};

/// One rule set Redis holds active: its version, and its document once verified against the
/// digest recorded at publish (or why it failed).
#[derive(Debug, Clone)]
pub struct ActiveEntry {
    pub version: String,
    pub document: Result<RuleSetDoc, String>,
}

impl Catalog {
    /// The catalog for what Redis holds active ([`Catalog::assemble`]), carrying the lineage of
    /// that state: what the replica then remembers having verified.
    pub fn from_redis(active: crate::store::ActiveDocuments, previous: &Catalog) -> Catalog {
        let mut catalog = Self::assemble(active.entries, previous);
        catalog.lineage = active.lineage;
        catalog
    }

    /// The catalog for the active rule sets `active` (id → entry), falling back per rule set to
    /// what `previous` verified from Redis (see the module documentation).
    pub fn assemble(active: BTreeMap<String, ActiveEntry>, previous: &Catalog) -> Catalog {
        let earlier = |id: &str| {
            (previous.origin == Origin::Redis)
                .then(|| previous.documents.get(id))
                .flatten()
        };
        let mut out = Catalog {
            rulesets: BTreeMap::new(),
            documents: BTreeMap::new(),
            base_id: String::new(),
            origin: Origin::Redis,
            refused: BTreeMap::new(),
            lineage: None,
        };
        let earlier_base = (previous.origin == Origin::Redis).then_some(previous.base_id.as_str());
        let base_id = match base_of(&active, earlier_base) {
            Ok(id) => id,
            Err(reason) => {
                for (id, entry) in &active {
                    out.refuse(id, entry, reason.clone(), None);
                }
                return out;
            }
        };
        out.base_id = base_id.clone();
        let Some(base) = active.get(&base_id) else {
            // An overlay extends a base that is not active at all.
            let reason = format!("its base '{base_id}' is not active");
            for (id, entry) in &active {
                out.refuse(id, entry, reason.clone(), None);
            }
            return out;
        };
        let Some(base_doc) = out.admit(&base_id, base, None, earlier(&base_id)) else {
            let reason = format!("its base '{base_id}' was refused");
            for (id, entry) in active.iter().filter(|(id, _)| **id != base_id) {
                out.refuse(id, entry, reason.clone(), None);
            }
            return out;
        };
        for (id, entry) in active.iter().filter(|(id, _)| **id != base_id) {
            out.admit(id, entry, Some(&base_doc), earlier(id));
        }
        out
    }

    /// Serves `entry`'s document, else the `earlier` one, compiled on `base` (`None` for the
    /// base itself); records a refusal when the active one was not served. Returns the document
    /// served.
    fn admit(
        &mut self,
        id: &str,
        entry: &ActiveEntry,
        base: Option<&RuleSetDoc>,
        earlier: Option<&RuleSetDoc>,
    ) -> Option<RuleSetDoc> {
        let reason = match &entry.document {
            Ok(doc) => match build(doc, base) {
                Ok(rs) => return Some(self.serve(doc, rs)),
                Err(reason) => reason,
            },
            Err(reason) => reason.clone(),
        };
        let kept = earlier.and_then(|doc| build(doc, base).ok().map(|rs| (doc, rs)));
        let serving = kept.as_ref().map(|(doc, _)| doc.version.clone());
        self.refuse(id, entry, reason, serving);
        kept.map(|(doc, rs)| self.serve(doc, rs))
    }

    fn serve(&mut self, doc: &RuleSetDoc, rs: RuleSet) -> RuleSetDoc {
        self.rulesets.insert(doc.id.clone(), rs);
        self.documents.insert(doc.id.clone(), doc.clone());
        doc.clone()
    }

    fn refuse(&mut self, id: &str, entry: &ActiveEntry, reason: String, serving: Option<String>) {
        self.refused.insert(
            id.to_owned(),
            Refusal {
                id: id.to_owned(),
                version: entry.version.clone(),
                reason,
                serving,
            },
        );
    }
}

/// Compiles one document: a base on its own, an overlay on `base`, checking it extends it. Also
/// how a pinned version is compiled for a replay (`app::replay`).
pub(crate) fn build(doc: &RuleSetDoc, base: Option<&RuleSetDoc>) -> Result<RuleSet, String> {
    match (&doc.extends, base) {
        (None, None) => compile(doc, None).map_err(|e| describe(&e)),
        (Some(extends), Some(base)) if *extends == base.id => {
            compile(doc, Some(base)).map_err(|e| describe(&e))
        }
        (Some(extends), _) => Err(format!(
            "it extends '{extends}', which is not the active base"
        )),
        (None, Some(base)) => Err(format!(
            "a second base beside '{}': only one base may be active",
            base.id
        )),
    }
}

/// The id of the one base among the active rule sets: the verified documents without `extends`,
/// and the ids the verified overlays extend, must name exactly one. When every payload failed,
/// the base this replica verified before (`earlier`), or a lone rule set, is taken as the base
/// (its refusal is reported either way).
fn base_of(
    active: &BTreeMap<String, ActiveEntry>,
    earlier: Option<&str>,
) -> Result<String, String> {
    let named: BTreeSet<&str> = active
        .iter()
        .filter_map(|(id, entry)| match &entry.document {
            Ok(doc) => Some(doc.extends.as_deref().unwrap_or(id.as_str())),
            Err(_) => None,
        })
        .collect();
    let earlier = earlier.filter(|id| active.contains_key(*id));
    match (named.len(), active.len()) {
        (1, _) => Ok(named.into_iter().next().unwrap_or_default().to_owned()),
        (0, _) if earlier.is_some() => Ok(earlier.unwrap_or_default().to_owned()),
        (0, 1) => Ok(active.keys().next().cloned().unwrap_or_default()),
        (0, _) => Err("no active payload could be verified, so the base is unknown".into()),
        _ => Err(format!(
            "the active rule sets name more than one base ({})",
            named.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// One line per problem, for `/readyz` and the log.
fn describe(e: &LoadError) -> String {
    e.problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> Catalog {
        Catalog::bundled().expect("bundled rule sets compile")
    }

    /// The bundled documents re-labelled `version`, as Redis would hold them.
    fn docs(version: &str) -> BTreeMap<String, RuleSetDoc> {
        bundled()
            .documents
            .into_iter()
            .map(|(id, mut doc)| {
                doc.version = version.to_owned();
                (id, doc)
            })
            .collect()
    }

    fn entries(
        docs: &BTreeMap<String, RuleSetDoc>,
        corrupt: &BTreeSet<String>,
    ) -> BTreeMap<String, ActiveEntry> {
        docs.iter()
            .map(|(id, doc)| {
                let document = if corrupt.contains(id) {
                    Err("digest mismatch".to_owned())
                } else {
                    Ok(doc.clone())
                };
                (
                    id.clone(),
                    ActiveEntry {
                        version: doc.version.clone(),
                        document,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_corrupt_overlay_refuses_only_its_clinic() {
        let active = entries(&docs("2"), &BTreeSet::from(["clinic-aurora".to_owned()]));
        let catalog = Catalog::assemble(active, &Catalog::none());
        assert_eq!(catalog.origin, Origin::Redis);
        assert_eq!(
            catalog
                .for_tenant(Some("clinic-borealis"))
                .map(|rs| rs.meta().id.clone()),
            Ok("base".to_owned())
        );
        let refused = catalog.for_tenant(Some("clinic-aurora")).map(|_| ());
        assert!(
            matches!(&refused, Err(super::super::Unavailable::Refused { id, version, .. }) if id == "clinic-aurora" && version == "2"),
            "{refused:?}"
        );
    }

    #[test]
    fn a_corrupt_base_refuses_everyone() {
        let active = entries(&docs("2"), &BTreeSet::from(["base".to_owned()]));
        let catalog = Catalog::assemble(active, &Catalog::none());
        assert!(catalog.rulesets.is_empty());
        assert_eq!(catalog.refused.len(), 2);
        assert!(catalog.for_tenant(None).is_err());
        assert!(catalog.for_tenant(Some("clinic-aurora")).is_err());
    }

    #[test]
    fn a_running_replica_keeps_the_version_it_verified() {
        let previous = Catalog::assemble(entries(&docs("1"), &BTreeSet::new()), &Catalog::none());
        let active = entries(&docs("2"), &BTreeSet::from(["clinic-aurora".to_owned()]));
        let catalog = Catalog::assemble(active, &previous);
        let served = catalog.for_tenant(Some("clinic-aurora")).expect("kept");
        assert_eq!(served.meta().version, "1");
        assert_eq!(
            catalog.refused["clinic-aurora"].serving.as_deref(),
            Some("1")
        );
        assert_eq!(catalog.rulesets["base"].meta().version, "2");
    }

    /// Every subset of the two payloads.
    fn subsets() -> Vec<BTreeSet<String>> {
        let ids = ["base", "clinic-aurora"];
        (0..4)
            .map(|bits| {
                ids.iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, id)| (*id).to_owned())
                    .collect()
            })
            .collect()
    }

    /// Over every input (which payloads fail now, which failed before, whether the replica served
    /// rule sets from Redis or bundled ones, and each kind of caller), exhaustively: every caller
    /// is answered by a version Redis holds active and that verified, or by one this replica
    /// verified from Redis earlier, or refused. Never by a bundled rule set, and never by the base
    /// in place of a refused overlay.
    #[test]
    fn only_verified_redis_versions_answer() {
        let mut previous: Vec<(Option<BTreeSet<String>>, Catalog)> = vec![(None, bundled())];
        for before in subsets() {
            let catalog = Catalog::assemble(entries(&docs("1"), &before), &Catalog::none());
            previous.push((Some(before), catalog));
        }
        for (before, previous) in &previous {
            // What the replica verified and served before: an overlay only with its base.
            let verified_before = |id: &str| {
                before
                    .as_ref()
                    .is_some_and(|b| !b.contains(id) && !b.contains("base"))
            };
            for now in subsets() {
                let catalog = Catalog::assemble(entries(&docs("2"), &now), previous);
                for tenant in [None, Some("clinic-aurora"), Some("clinic-borealis")] {
                    let case = format!("now {now:?}, before {before:?}, tenant {tenant:?}");
                    let wanted = if tenant == Some("clinic-aurora") {
                        "clinic-aurora"
                    } else {
                        "base"
                    };
                    let base_ok = !now.contains("base") || verified_before("base");
                    match catalog.for_tenant(tenant) {
                        Ok(rs) => {
                            assert_eq!(
                                rs.meta().id,
                                wanted,
                                "never the base for an overlay: {case}"
                            );
                            match rs.meta().version.as_str() {
                                "2" => assert!(!now.contains(wanted), "{case}"),
                                "1" => assert!(
                                    now.contains(wanted) && verified_before(wanted),
                                    "{case}"
                                ),
                                other => panic!("never bundled ({other}): {case}"),
                            }
                            assert!(base_ok, "an overlay needs its base: {case}");
                        }
                        Err(_) => assert!(
                            !base_ok || (now.contains(wanted) && !verified_before(wanted)),
                            "refused only when the rule set and any earlier version failed: {case}"
                        ),
                    }
                }
            }
        }
    }
}
