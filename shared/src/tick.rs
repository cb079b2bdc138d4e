//! Simulation time, counted in ticks.

use serde::{Deserialize, Serialize};

/// A simulation step number. It wraps after `u32::MAX`, so ticks are compared with
/// [`Tick::diff`] (wrap-safe) and never with `<`: there is deliberately no `PartialOrd`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Tick(pub u32);

impl Tick {
    /// The tick after this one.
    #[must_use]
    pub fn next(self) -> Tick {
        Tick(self.0.wrapping_add(1))
    }

    /// This tick moved `n` ticks forward (wrapping).
    #[must_use]
    pub fn plus(self, n: u32) -> Tick {
        Tick(self.0.wrapping_add(n))
    }

    /// How many ticks `self` is ahead of `earlier`; negative when it is behind. Correct across
    /// the wrap as long as the two are less than 2^31 ticks apart (over a year at 60 Hz).
    #[must_use]
    pub fn diff(self, earlier: Tick) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Whether `self` comes strictly after `other` (wrap-safe).
    #[must_use]
    pub fn is_after(self, other: Tick) -> bool {
        self.diff(other) > 0
    }
}

/// Whether sequence number `a` comes strictly after `b` (wrap-safe, like [`Tick::is_after`]):
/// input sequence numbers wrap like ticks.
#[must_use]
pub fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl std::fmt::Display for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Tick;

    #[test]
    fn comparison_survives_the_wrap() {
        let before = Tick(u32::MAX - 1);
        let after = before.plus(3);
        assert_eq!(after, Tick(1));
        assert_eq!(after.diff(before), 3);
        assert_eq!(before.diff(after), -3);
        assert!(after.is_after(before));
        assert!(!before.is_after(after));
        assert!(!after.is_after(after));
    }
}
