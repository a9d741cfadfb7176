//! Deterministic elementary functions: [`ln`] (correctly rounded), [`exp`] and [`ln_gamma`].
//!
//! Rust's `f64::ln` / `f64::exp` call the platform's math library, whose last bit differs between
//! libraries, versions and even CPUs (glibc picks an FMA variant of `log` at run time). These are
//! built from IEEE-exact operations only (`+ - * /`, `sqrt`, `floor`, bit manipulation), so they
//! return the same bits everywhere.
//!
//! [`ln`] is evaluated in double-double arithmetic (about 100 correct bits) and rounded once, so it
//! is correctly rounded except for inputs within ~2^-100 relative of a rounding boundary (none is
//! known to be hit). numpy's legacy `exponential` calls the C library's `log`; glibc >= 2.28 rounds
//! ~0.07 % of `log(1 - U)` values the other way, so individual draws can differ from numpy's by one
//! ulp, but the artifact's accumulated Poisson arrival traces are identical (see
//! [`NumpyRandomState::exponential`](super::NumpyRandomState::exponential)).

/// An unevaluated sum `hi + lo` with `|lo| <= ulp(hi) / 2`.
#[derive(Clone, Copy, Debug)]
struct Dd {
    hi: f64,
    lo: f64,
}

/// `a + b` exactly, as a normalised pair (Knuth's TwoSum).
fn two_sum(a: f64, b: f64) -> Dd {
    let hi = a + b;
    let bb = hi - a;
    let lo = (a - (hi - bb)) + (b - bb);
    Dd { hi, lo }
}

/// `a + b` exactly, given `|a| >= |b|` or `a == 0` (Dekker's FastTwoSum).
fn quick_two_sum(a: f64, b: f64) -> Dd {
    let hi = a + b;
    let lo = b - (hi - a);
    Dd { hi, lo }
}

/// Veltkamp's split of `a` into two halves of 26 significant bits (for `|a| < 2^995`).
fn split(a: f64) -> (f64, f64) {
    let t = 134_217_729.0 * a; // 2^27 + 1
    let hi = t - (t - a);
    (hi, a - hi)
}

/// `a * b` exactly (Dekker's TwoProduct, without FMA).
fn two_prod(a: f64, b: f64) -> Dd {
    let hi = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let lo = ((ah * bh - hi) + ah * bl + al * bh) + al * bl;
    Dd { hi, lo }
}

impl Dd {
    fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    fn add(self, b: Dd) -> Dd {
        let s = two_sum(self.hi, b.hi);
        let t = two_sum(self.lo, b.lo);
        let u = quick_two_sum(s.hi, s.lo + t.hi);
        quick_two_sum(u.hi, t.lo + u.lo)
    }

    fn mul(self, b: Dd) -> Dd {
        let p = two_prod(self.hi, b.hi);
        quick_two_sum(p.hi, p.lo + (self.hi * b.lo + self.lo * b.hi))
    }

    fn mul_f64(self, b: f64) -> Dd {
        let p = two_prod(self.hi, b);
        quick_two_sum(p.hi, p.lo + self.lo * b)
    }

    /// `1 / n` to double-double precision.
    fn recip(n: f64) -> Dd {
        let hi = 1.0 / n;
        let p = two_prod(hi, n);
        Dd {
            hi,
            lo: ((1.0 - p.hi) - p.lo) / n,
        }
    }

    /// `a / b` for an `f64` numerator and a double-double denominator.
    fn f64_div(a: f64, b: Dd) -> Dd {
        let q1 = a / b.hi;
        let p = two_prod(q1, b.hi);
        let r = ((a - p.hi) - p.lo) - q1 * b.lo;
        quick_two_sum(q1, r / b.hi)
    }
}

/// ln 2 as a double-double (0x3FE62E42FEFA39EF + 0x3C7ABC9E3B39803F).
const LN2: Dd = Dd {
    hi: f64::from_bits(0x3FE6_2E42_FEFA_39EF),
    lo: f64::from_bits(0x3C7A_BC9E_3B39_803F),
};

const MANTISSA_MASK: u64 = (1 << 52) - 1;

/// The natural logarithm, correctly rounded (see the module docs); the same bits on every platform.
///
/// `ln(0) = -inf`, `ln(+inf) = +inf`, and NaN for negative inputs and NaN.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    // x = 2^e * m with m in [sqrt(1/2), sqrt(2)).
    let (x, mut e) = if x < f64::MIN_POSITIVE {
        (x * f64::from_bits(0x4350_0000_0000_0000), -54_i64) // * 2^54, exact
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & MANTISSA_MASK) | (1023 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(f) = 2f (1 + s/3 + s^2/5 + ...), f = (m - 1)/(m + 1), s = f^2 <= 0.0295.
    // m - 1 is exact (Sterbenz); terms from s^9 on are below 2^-47 relative and need only f64.
    let f = Dd::f64_div(m - 1.0, two_sum(m, 1.0));
    let s = f.mul(f);
    let mut tail = 0.0;
    for k in (9..=22).rev() {
        tail = tail * s.hi + 1.0 / f64::from(2 * k + 1);
    }
    let mut acc = Dd::from_f64(tail);
    for k in (1..=8).rev() {
        acc = Dd::recip(f64::from(2 * k + 1)).add(s.mul(acc));
    }
    let series = Dd::from_f64(1.0).add(s.mul(acc));
    let ln_m = Dd {
        hi: 2.0 * f.hi,
        lo: 2.0 * f.lo,
    }
    .mul(series);
    let r = LN2.mul_f64(e as f64).add(ln_m);
    r.hi + r.lo
}

/// ln 2 split for Cody–Waite reduction: the high part has 32 significant bits, so `k * LN2_HI`
/// is exact for `|k| < 2^21`.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// `e^x`, within one ulp (correctly rounded for about 99 % of arguments); the same bits on every
/// platform.
///
/// Overflows to `+inf` above ~709.78 and underflows to 0 below ~-745.13.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.133_219_101_941_2 {
        return 0.0;
    }
    // x = k ln2 + r + r_err, |r| <= ln2 / 2 (plus rounding); k * LN2_HI and x - k * LN2_HI are
    // exact, r_err is what rounding r lost.
    let k = (x * std::f64::consts::LOG2_E).round();
    let hi = x - k * LN2_HI;
    let lo = k * LN2_LO;
    let r = hi - lo;
    let r_err = (hi - r) - lo;
    // e^r = 1 + r + (r^2 / 2)(1 + q), q = (r/3)(1 + (r/4)(1 + ... (r/14))): truncation below
    // 2^-57 for |r| <= 0.35. The leading 1 + r is kept exact until the one final rounding.
    let mut q = 0.0;
    for j in (3..=14).rev() {
        q = (q + 1.0) * r / f64::from(j);
    }
    let t = 0.5 * r * r * (1.0 + q);
    let head = two_sum(1.0, r);
    let y = head.hi + (head.lo + (t + r_err * (1.0 + r)));
    // Scale by 2^k in steps whose factors are normal numbers (k is in [-1075, 1024]).
    let k = k as i64;
    if k > 1023 {
        y * pow2(k - 1) * 2.0
    } else if k < -1022 {
        y * pow2(k + 64) * pow2(-64)
    } else {
        y * pow2(k)
    }
}

/// `2^k` for `k` in `-1022..=1023`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// ln(2 pi) / 2.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Γ(x)` for `x >= 1` (Stirling's series after shifting `x` above 10; absolute error about
/// 1e-14 for small `x`, relative about 1e-15 for large), the same bits on every platform. Used for
/// `ln k!` in the Poisson sampler. Returns NaN for `x < 1` or NaN.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x < 1.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    // ln Γ(x) = ln Γ(x + n) - ln(x (x + 1) ... (x + n - 1)).
    let mut z = x;
    let mut shift = 1.0;
    while z < 10.0 {
        shift *= z;
        z += 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Bernoulli terms B_2k / (2k (2k - 1) z^(2k - 1)) to z^-13: truncation below 3e-17 for z >= 10.
    let series = inv
        * (1.0 / 12.0
            + inv2
                * (-1.0 / 360.0
                    + inv2
                        * (1.0 / 1260.0
                            + inv2
                                * (-1.0 / 1680.0
                                    + inv2
                                        * (1.0 / 1188.0
                                            + inv2 * (-691.0 / 360_360.0 + inv2 / 156.0))))));
    (z - 0.5) * ln(z) - z + HALF_LN_2PI + series - ln(shift)
}

/// 2 pi, rounded.
const TWO_PI: f64 = std::f64::consts::TAU;

/// `cos(2 pi t)` for `t` in turns (a whole number of turns is exact), accurate to a few ulp; the
/// same bits on every platform. Used for the synthetic trace's diurnal cycle. NaN and infinite
/// `t` give NaN.
pub fn cos_turns(t: f64) -> f64 {
    if !t.is_finite() {
        return f64::NAN;
    }
    // Reduce to [0, 1/2] (cos is even and 1-periodic in turns; t - round(t) is exact).
    let t = (t - t.round()).abs();
    // cos(2 pi t) = -cos(2 pi (1/2 - t)); fold to [0, 1/4], where the argument is at most pi/2.
    let (t, sign) = if t > 0.25 { (0.5 - t, -1.0) } else { (t, 1.0) };
    let x = TWO_PI * t;
    let x2 = x * x;
    // Taylor series to x^22 / 22!: truncation below 1e-17 for x <= pi/2.
    let mut p = 0.0;
    for j in (1..=11).rev() {
        p = 1.0 - p * x2 / f64::from((2 * j - 1) * (2 * j));
    }
    sign * p
}
