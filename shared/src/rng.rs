//! One small deterministic PRNG (xorshift64*) for everything that must replay by seed: the
//! game's rules ([`crate::game::GameRng`] wraps it), bot behaviours, test links, bench
//! scenarios. Fast and reproducible, not for anything secret.

/// xorshift64*: 64 bits of state, never zero.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included; nearby seeds give unrelated streams
    /// after a few draws).
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        Rng::from_state(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A generator starting from `state` (made odd, so never the all-zero state).
    #[must_use]
    pub fn from_state(state: u64) -> Rng {
        Rng(state | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A float in `[0, 1)` (24 random bits).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A float in `[0, 1)` (53 random bits).
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A float in `[-1, 1)`.
    pub fn signed(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_floats_in_range() {
        let (mut a, mut b, mut c) = (Rng::new(1), Rng::new(1), Rng::new(2));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        let mut z = Rng::new(0);
        for _ in 0..1_000 {
            assert!((0.0..1.0).contains(&z.unit()));
            assert!((0.0..1.0).contains(&z.unit_f64()));
            assert!((-1.0..1.0).contains(&z.signed()));
        }
    }
}
