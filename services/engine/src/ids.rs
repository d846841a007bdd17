//! Indices and the small sets built over them: the vocabulary every other module shares.
//!
//! A leaf module: it imports nothing from the crate, so the compiled model (`model`), the
//! answers (`facts`) and the conditions over them (`conditions`) can all use these types without
//! any of them depending back on another.

/// An index into one of the rule set's name tables (facts, zones, procedures, ...), resolved once
/// at compile time so that evaluation compares integers, not strings.
pub(crate) type Ix = u16;

/// A small set of fact indices (rule sets declare at most 128 facts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FactSet([u64; 2]);

/// The most facts a rule set may declare: the capacity of a [`FactSet`].
pub(crate) const MAX_FACTS: usize = 128;

impl FactSet {
    pub fn insert(&mut self, ix: Ix) {
        let i = usize::from(ix);
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    pub fn contains(self, ix: Ix) -> bool {
        let i = usize::from(ix);
        self.0
            .get(i / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }

    /// How many facts the set holds.
    pub fn len(self) -> usize {
        (self.0[0].count_ones() + self.0[1].count_ones()) as usize
    }

    pub fn union(&mut self, other: FactSet) {
        self.0[0] |= other.0[0];
        self.0[1] |= other.0[1];
    }

    pub fn iter(self) -> impl Iterator<Item = Ix> {
        (0..MAX_FACTS)
            .filter(move |i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .filter_map(|i| Ix::try_from(i).ok())
    }
}

/// A request input (not a fact) that a rule needs to be decided: the check date, the procedure
/// history, the device, the zones or the indication. Absent, it is unknown exactly as an unanswered fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    Date,
    History,
    Device,
    Zones,
    Indication,
}

impl Input {
    const ALL: [Input; 5] = [
        Input::Date,
        Input::History,
        Input::Device,
        Input::Zones,
        Input::Indication,
    ];

    fn bit(self) -> u8 {
        match self {
            Input::Date => 1,
            Input::History => 2,
            Input::Device => 4,
            Input::Zones => 8,
            Input::Indication => 16,
        }
    }

    /// The request field that would supply it.
    pub fn name(self) -> &'static str {
        match self {
            Input::Date => "date",
            Input::History => "history",
            Input::Device => "device",
            Input::Zones => "zones",
            Input::Indication => "indication",
        }
    }
}

/// What an undecided rule still needs: facts to ask and request inputs to send. Every unknown
/// result of a condition records here why it is unknown, so that nothing undecided can pass for
/// "no" without naming what would decide it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Missing {
    pub facts: FactSet,
    inputs: u8,
}

impl Missing {
    pub fn fact(&mut self, ix: Ix) {
        self.facts.insert(ix);
    }

    pub fn input(&mut self, input: Input) {
        self.inputs |= input.bit();
    }

    pub fn union(&mut self, other: Missing) {
        self.facts.union(other.facts);
        self.inputs |= other.inputs;
    }

    pub fn needs(self, input: Input) -> bool {
        self.inputs & input.bit() != 0
    }

    pub fn inputs(self) -> impl Iterator<Item = Input> {
        Input::ALL.into_iter().filter(move |i| self.needs(*i))
    }
}
