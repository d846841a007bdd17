//! Eligibility from request bytes to answer bytes, for the adapters' hot path (issue 16): the
//! request read straight into the rule set's slots ([`crate::read`]), the same evaluation as
//! [`RuleSet::eligibility`], the answer written from texts serialised once per rule set
//! ([`crate::render`]).
//!
//! A read that returns `None` is not a refusal: the caller asks the general path
//! ([`RuleSet::eligibility`] on the typed request), which answers or names the fault.

use jiff::civil::Date;

use crate::api::{Decision, Eligibility};
use crate::decide::{Outcome, ResolvedEligibility, evaluate};
use crate::model::RuleSet;
use crate::read::{AnswerRef, EligibilityParts};
use crate::render;

/// An eligibility request read against one rule set, every name resolved.
pub struct ReadEligibility<'rs> {
    rs: &'rs RuleSet,
    resolved: ResolvedEligibility,
    date: Date,
}

/// The decision on a [`ReadEligibility`], ready to be written.
pub struct Verdict<'rs> {
    rs: &'rs RuleSet,
    treatment: crate::ids::Ix,
    date: Date,
    outcome: Outcome,
}

impl RuleSet {
    /// Reads an eligibility request body (JSON bytes) straight into this rule set's slots.
    ///
    /// `None` when the body is anything but a valid, unpinned, unexplained request this rule set
    /// answers: any fault, `explain: true`, a `ruleset_version` or `ruleset_digest`, a field
    /// it does not know. The caller then takes the general path (parse into
    /// [`crate::EligibilityRequest`], [`RuleSet::eligibility`]), which answers or names the fault
    /// as it always has. What it reads, it answers exactly as the general path would.
    pub fn read_eligibility(&self, body: &[u8]) -> Option<ReadEligibility<'_>> {
        let (resolved, date) = crate::read::eligibility(&self.0, body)?;
        Some(ReadEligibility {
            rs: self,
            resolved,
            date,
        })
    }
}

impl RuleSet {
    /// [`RuleSet::read_eligibility`] for a request an adapter has already decoded (gRPC): the
    /// same slots, the same checks, `None` for whatever the general path must answer.
    pub fn read_eligibility_parts<'a, F, H>(
        &self,
        parts: EligibilityParts<'a, F, H>,
    ) -> Option<ReadEligibility<'_>>
    where
        F: IntoIterator<Item = (&'a str, AnswerRef<'a>)>,
        H: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (resolved, date) = crate::read::eligibility_parts(&self.0, parts)?;
        Some(ReadEligibility {
            rs: self,
            resolved,
            date,
        })
    }
}

impl<'rs> ReadEligibility<'rs> {
    /// The treatment asked about.
    pub fn treatment(&self) -> &'rs str {
        self.rs.0.treatments.name(self.resolved.treatment)
    }

    /// Evaluates every rule of the treatment, as [`RuleSet::eligibility`] does.
    pub fn decide(&self) -> Verdict<'rs> {
        let outcome = evaluate(
            &self.rs.0,
            self.resolved.treatment,
            &self.resolved.ctx(self.date),
        );
        Verdict {
            rs: self.rs,
            treatment: self.resolved.treatment,
            date: self.date,
            outcome,
        }
    }
}

impl<'rs> Verdict<'rs> {
    /// The decision.
    pub fn decision(&self) -> Decision {
        self.outcome.decision
    }

    /// The treatment decided on.
    pub fn treatment(&self) -> &'rs str {
        self.rs.0.treatments.name(self.treatment)
    }

    /// Appends the answer to `out` as a JSON object: the bytes of `serde_json::to_vec` of the
    /// [`Eligibility`] the general path gives, with `extra` string fields (such as a decision
    /// id) added before its closing brace, as `#[serde(flatten)]` beside them would.
    pub fn write_json(&self, extra: &[(&str, &str)], out: &mut Vec<u8>) {
        let rs = &*self.rs.0;
        render::eligibility(
            rs,
            &rs.fragments,
            self.treatment,
            self.date,
            &self.outcome,
            extra,
            out,
        );
    }

    /// The answer as the typed [`Eligibility`] (for an adapter that renders it itself).
    pub fn into_eligibility(self) -> Eligibility {
        self.rs
            .eligibility_of(self.treatment, self.date, self.outcome)
    }
}
