//! Needle depth as an exact quantity.

use serde::{Serialize, Serializer};

/// A needle depth, stored in whole micrometres so that comparisons and minimums are exact
/// (0.3 mm has no exact binary float); rendered in millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DepthMm(u32);

/// Deeper than any aesthetic needle; anything above is a typo, not a depth.
const MAX_UM: u32 = 10_000;

impl DepthMm {
    /// Parses millimetres; `None` unless the value is a positive depth up to 10 mm.
    pub(crate) fn from_mm(mm: f64) -> Option<Self> {
        if !mm.is_finite() || mm <= 0.0 {
            return None;
        }
        let um = (mm * 1000.0).round();
        if um < 1.0 || um > f64::from(MAX_UM) {
            return None;
        }
        // In range 1..=10_000 by the checks above, so the cast is exact.
        Some(Self(um as u32))
    }

    /// The depth in whole micrometres: the exact value, for arithmetic that must not round.
    pub(crate) fn micrometres(self) -> u32 {
        self.0
    }

    /// The depth in millimetres, as the API shows it.
    pub fn mm(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// Rounds down to a multiple of `step` micrometres, never below `step`.
    pub(crate) fn floor_to(self, step: u32) -> Self {
        Self((self.0 / step * step).max(step.min(self.0)))
    }

    pub(crate) fn from_um(um: u32) -> Self {
        Self(um)
    }
}

impl Serialize for DepthMm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.mm())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_millimetres_exactly() {
        let d = DepthMm::from_mm(0.3).expect("valid");
        assert_eq!(d.micrometres(), 300);
        assert_eq!(d.mm(), 0.3);
    }

    #[test]
    fn refuses_zero_negative_and_absurd_depths() {
        assert_eq!(DepthMm::from_mm(0.0), None);
        assert_eq!(DepthMm::from_mm(-1.0), None);
        assert_eq!(DepthMm::from_mm(25.0), None);
        assert_eq!(DepthMm::from_mm(f64::NAN), None);
    }
}
