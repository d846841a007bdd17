//! A client's answers laid out by fact index: the values conditions are evaluated against.

use jiff::civil::Date;

use crate::ids::Ix;

/// One answer. `Unknown` is "not answered"; `Never` is an explicit `null` for a date fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FactVal {
    Unknown,
    Never,
    Bool(bool),
    Int(i64),
    Enum(u8),
    Date(Date),
}

/// Answers by fact index.
pub(crate) struct FactValues(pub Vec<FactVal>);

impl FactValues {
    pub fn get(&self, ix: Ix) -> FactVal {
        self.0
            .get(usize::from(ix))
            .copied()
            .unwrap_or(FactVal::Unknown)
    }
}
