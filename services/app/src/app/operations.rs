//! The registry of operations: every question the door answers, with its name (spans, metrics,
//! the decision log's `operation` column), the scope a key needs, and whether it is a decision
//! (traced, counted, logged, and so replayable).
//!
//! Each [`super::Question`] names its operation here, and replay decodes a logged row by
//! matching on [`Operation`] exhaustively: an operation added without a way to replay it does not
//! compile, and the test `every_logged_operation_replays` asks each decision of [`Operation::ALL`]
//! through the door and replays what it logged.

use crate::auth::Scope;

/// An operation of the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// One eligibility check, a batch of them, or a calendar of slots (each slot a check).
    Eligibility,
    Contraindications,
    DepthLimits,
    Plan,
    ListTreatments,
    GetTreatment,
    GetCatalogue,
    ListFacts,
    GetQuestionnaire,
}

impl Operation {
    /// Every operation, in the order the docs list them.
    pub const ALL: [Operation; 9] = [
        Operation::Eligibility,
        Operation::Contraindications,
        Operation::DepthLimits,
        Operation::Plan,
        Operation::ListTreatments,
        Operation::GetTreatment,
        Operation::GetCatalogue,
        Operation::ListFacts,
        Operation::GetQuestionnaire,
    ];

    /// The name in spans, metrics and the decision log.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::Eligibility => "eligibility",
            Operation::Contraindications => "contraindications",
            Operation::DepthLimits => "depth_limits",
            Operation::Plan => "plan",
            Operation::ListTreatments => "list_treatments",
            Operation::GetTreatment => "get_treatment",
            Operation::GetCatalogue => "get_catalogue",
            Operation::ListFacts => "list_facts",
            Operation::GetQuestionnaire => "get_questionnaire",
        }
    }

    /// The scope a key needs to ask it.
    pub const fn scope(self) -> Scope {
        match self {
            Operation::DepthLimits => Scope::Devices,
            Operation::Plan => Scope::Plans,
            // What a rule set declares: any key with a reading scope (a device needs the device
            // list as much as a booking system needs the treatments).
            Operation::ListTreatments
            | Operation::GetTreatment
            | Operation::GetCatalogue
            | Operation::ListFacts => Scope::Catalogue,
            Operation::Eligibility | Operation::Contraindications | Operation::GetQuestionnaire => {
                Scope::Eligibility
            }
        }
    }

    /// A decision about a client or a device: traced, counted, logged and replayable. Catalogue
    /// reads are not.
    pub const fn is_decision(self) -> bool {
        matches!(
            self,
            Operation::Eligibility
                | Operation::Contraindications
                | Operation::DepthLimits
                | Operation::Plan
        )
    }

    /// The operation of a name (a logged row's `operation`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_read_back() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("unknown"), None);
    }
}
