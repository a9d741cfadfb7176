//! xoshiro256** (Blackman and Vigna) seeded through SplitMix64, and the samplers the synthetic
//! workloads draw from.
//!
//! Every sampler's algorithm and the number of draws it consumes are part of the results contract
//! (see [the module docs](super)): a changed sampler changes every synthetic trace.

use super::det_math;

/// SplitMix64 (Steele, Lea and Flood; Vigna's `splitmix64.c`): the seeding generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Lambda below which [`Xoshiro256StarStar::poisson`] multiplies uniforms (numpy's threshold).
const POISSON_PTRS_FROM: f64 = 10.0;

/// xoshiro256**: 256 bits of state, 64-bit outputs.
#[derive(Clone, Debug)]
pub struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// The generator with state `s` as given. The state must not be all zero (it would only ever
    /// output zeros); [`Xoshiro256StarStar::seed_from_u64`] never produces that.
    pub fn from_state(s: [u64; 4]) -> Xoshiro256StarStar {
        Xoshiro256StarStar { s }
    }

    /// The generator for `seed`: the state is the first four outputs of `SplitMix64::new(seed)`,
    /// as Vigna recommends.
    pub fn seed_from_u64(seed: u64) -> Xoshiro256StarStar {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Xoshiro256StarStar { s }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform double in `[0, 1)`: the top 53 bits of one output times 2^-53.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-and-reject, unbiased; `n = 0` gives 0
    /// without a draw).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// An exponential draw with the given mean: `-ln(1 - U) * mean` (one draw).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -det_math::ln(1.0 - self.uniform()) * mean
    }

    /// A standard normal draw by Marsaglia's polar method (no trigonometry): pairs of uniforms in
    /// the unit disc, the second normal of each accepted pair discarded.
    pub fn standard_normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * det_math::ln(s) / s).sqrt();
            }
        }
    }

    /// A normal draw: `mean + sd * standard_normal()`.
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        mean + sd * self.standard_normal()
    }

    /// A lognormal draw: `exp(normal(mu, sigma))` (`mu`, `sigma` of the logarithm).
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        det_math::exp(self.normal(mu, sigma))
    }

    /// A Pareto (type I) draw with minimum `scale` and tail index `shape`:
    /// `scale * exp(E / shape)` with `E` standard exponential, i.e. `P(X > x) = (scale / x)^shape`.
    pub fn pareto(&mut self, scale: f64, shape: f64) -> f64 {
        scale * det_math::exp(self.exponential(1.0) / shape)
    }

    /// A Poisson count with mean `lambda`: multiplication of uniforms below 10, Hörmann's
    /// transformed rejection with squeeze (PTRS, 1993) from 10 on, as numpy does. `lambda` that
    /// is not positive (or NaN) gives 0 without a draw; it is capped at 2^52.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        let lambda = lambda.min(4_503_599_627_370_496.0);
        if lambda < POISSON_PTRS_FROM {
            let limit = det_math::exp(-lambda);
            let mut count = 0;
            let mut prod = self.uniform();
            while prod > limit {
                count += 1;
                prod *= self.uniform();
            }
            return count;
        }
        self.poisson_ptrs(lambda)
    }

    fn poisson_ptrs(&mut self, lambda: f64) -> u64 {
        let slam = lambda.sqrt();
        let loglam = det_math::ln(lambda);
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = det_math::ln(v) + det_math::ln(inv_alpha) - det_math::ln(a / (us * us) + b);
            let rhs = -lambda + k * loglam - det_math::ln_gamma(k + 1.0);
            if lhs <= rhs {
                return k as u64;
            }
        }
    }
}
