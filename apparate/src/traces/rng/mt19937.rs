//! MT19937 (Matsumoto and Nishimura's Mersenne Twister, 32-bit) and the parts of numpy's legacy
//! `RandomState` the artifact's traces use.
//!
//! `NumpyRandomState::new(seed)` is `np.random.RandomState(seed)` (and `np.random.seed(seed)`):
//! numpy seeds MT19937 with the reference `init_genrand` for an integer seed in `0..2^32`.
//! [`NumpyRandomState::random_sample`] is numpy's 53-bit double from two words
//! (`rk_double` / `legacy_double`), and [`NumpyRandomState::exponential`] its legacy
//! `scale * -log(1 - U)`.

use super::det_math;

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The 32-bit Mersenne Twister, seeded as the reference `init_genrand` does.
#[derive(Clone)]
pub struct Mt19937 {
    key: [u32; N],
    pos: usize,
}

impl std::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mt19937")
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// The reference `init_genrand(seed)` (numpy's `mt19937_seed`).
    pub fn new(seed: u32) -> Mt19937 {
        let mut key = [0u32; N];
        key[0] = seed;
        for i in 1..N {
            let prev = key[i - 1];
            key[i] = 1_812_433_253_u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { key, pos: N }
    }

    /// Regenerates the 624 words of state (the reference `genrand_int32`'s block step).
    fn twist(&mut self) {
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for i in 0..N {
            let y = (self.key[i] & UPPER_MASK) | (self.key[(i + 1) % N] & LOWER_MASK);
            self.key[i] = self.key[(i + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.pos = 0;
    }

    /// The next 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= N {
            self.twist();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// numpy's legacy `RandomState` over [`Mt19937`], limited to what the artifact's traces draw.
#[derive(Clone, Debug)]
pub struct NumpyRandomState {
    mt: Mt19937,
}

impl NumpyRandomState {
    /// `np.random.RandomState(seed)`: MT19937 seeded with `init_genrand(seed)`. numpy accepts
    /// integer seeds in `0..2^32` only, hence `u32`.
    pub fn new(seed: u32) -> NumpyRandomState {
        NumpyRandomState {
            mt: Mt19937::new(seed),
        }
    }

    /// The next raw 32-bit word (what `randint(0, 2**32, dtype=np.uint32)` returns).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random_sample()`: a double in `[0, 1)` with 53 random bits, from the top 27 bits of one
    /// word and the top 26 of the next (`(a >> 5) * 2^26 + (b >> 6)) / 2^53`, exact).
    pub fn random_sample(&mut self) -> f64 {
        let a = self.mt.next_u32() >> 5;
        let b = self.mt.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0
    }

    /// Legacy `exponential(scale)`: `-log(1 - random_sample()) * scale`, one draw per value
    /// (`np.random.exponential(scale, size=n)` is `n` such calls in order).
    ///
    /// The logarithm is [`det_math::ln`], correctly rounded. numpy calls the C library's `log`,
    /// which on glibc >= 2.28 rounds about 0.07 % of these arguments the other way, so a draw can
    /// differ from numpy's in the last bit. For the artifact's Poisson traces (seed 2023, 70,000
    /// requests, 30 / 180 / 375 qps) the accumulated arrival times are nevertheless identical to
    /// numpy's, bit for bit, on glibc with and without FMA (fixture
    /// `apparate/tests/fixtures/traces/numpy_reference.json`).
    pub fn exponential(&mut self, scale: f64) -> f64 {
        -det_math::ln(1.0 - self.random_sample()) * scale
    }
}
