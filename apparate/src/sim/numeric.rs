//! Python and numpy arithmetic that the original's results depend on bit for bit.

/// Python's `round(x, digits)`: the decimal with `digits` fractional digits nearest to the
/// exact binary value of `x` (ties to even), converted back to the nearest f64 (spec §4.3).
pub fn round_py(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Fast path: with s = 10^digits exact, the rounded decimal is r / s for the integer r
    // nearest to the exact x·s, and IEEE division makes r / s the nearest double to it. x·s
    // in floating point is off by at most half an ulp, so r is certain unless x·s lies
    // within a few ulps of a half-integer; those go to the exact path.
    if digits <= 15 {
        let scale = POW10[digits];
        let y = x * scale;
        if y.abs() < 4.0e15 {
            let frac = (y - y.trunc()).abs();
            if (frac - 0.5).abs() > 1e-6 {
                return y.round() / scale;
            }
        }
    }
    // Rust formats with the exact decimal expansion and rounds half to even, as CPython does.
    format!("{x:.digits$}").parse().unwrap_or(x)
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// numpy's buffer size (elements): reductions hand the inner loop at most this many at a time.
const NPY_BUFSIZE: usize = 8192;

/// numpy 1.x `add.reduce` of a contiguous float64 array: start from the identity `0.0`, then
/// add the pairwise sum of each 8192-element buffer block in order ("partial pairwise
/// summation"; identical to plain pairwise summation up to 8192 elements).
pub fn numpy_sum(a: &[f64]) -> f64 {
    let mut acc = 0.0;
    for block in a.chunks(NPY_BUFSIZE) {
        acc += pairwise_sum(block);
    }
    acc
}

/// numpy's `mean` of a float64 array: pairwise sum divided by the count. `NaN` when empty.
pub fn numpy_mean(a: &[f64]) -> f64 {
    numpy_sum(a) / a.len() as f64
}

/// numpy's `pairwise_sum` kernel: sequential below 8 elements, eight interleaved accumulators
/// up to 128, and a recursive split (at half, rounded down to a multiple of 8) above.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// numpy's `linspace(left, right, num + 2).astype(int)[1:-1]`: `num` evenly spaced integers
/// strictly inside `[left, right]` (the artifact's `get_new_ramps`, spec §6.2).
pub fn new_ramps(left: usize, right: usize, num: usize) -> Vec<usize> {
    let div = (num + 1) as f64;
    let delta = right as f64 - left as f64;
    let step = delta / div;
    (1..=num)
        .map(|k| {
            let y = if step == 0.0 {
                (k as f64 / div) * delta
            } else {
                k as f64 * step
            } + left as f64;
            y.trunc() as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_py_matches_python_examples() {
        assert_eq!(round_py(0.00125, 4), 0.0013);
        assert_eq!(round_py(0.000625, 4), 0.0006);
        assert_eq!(round_py(0.03125, 4), 0.0312);
        assert_eq!(round_py(0.01 + 0.00125, 4), 0.0112);
        assert_eq!(round_py(2.0 / 3.0, 7), 0.6666667);
    }

    proptest::proptest! {
        /// The fast path agrees with the exact decimal rounding everywhere.
        #[test]
        fn round_py_fast_path_is_exact(x in -2.0f64..2.0, k in 0u32..40, digits in 0usize..9) {
            let x = if k == 0 { x } else { (x * 1e4).round() / 1e4 + (k as f64 - 20.0) * 5e-5 };
            let exact: f64 = format!("{x:.digits$}").parse().unwrap_or(x);
            proptest::prop_assert_eq!(round_py(x, digits).to_bits(), exact.to_bits(), "x = {:?}", x);
        }
    }

    #[test]
    fn round_py_ties_and_signs() {
        for &(x, d) in &[
            (0.00125, 4),
            (0.000625, 4),
            (2.5, 0),
            (-0.00005, 4),
            (-1.23456789, 3),
            (1e-9, 4),
        ] {
            let exact: f64 = format!("{x:.d$}").parse().unwrap();
            assert_eq!(round_py(x, d).to_bits(), exact.to_bits(), "{x} {d}");
        }
    }

    #[test]
    fn new_ramps_matches_spec_e2() {
        assert_eq!(new_ramps(0, 2, 1), vec![1]);
        assert_eq!(new_ramps(0, 2, 2), vec![0, 1]);
        assert_eq!(new_ramps(0, 2, 3), vec![0, 1, 1]);
        assert_eq!(new_ramps(0, 12, 1), vec![6]);
        assert_eq!(new_ramps(0, 12, 2), vec![4, 8]);
        assert_eq!(new_ramps(0, 12, 3), vec![3, 6, 9]);
        assert_eq!(new_ramps(3, 11, 1), vec![7]);
        assert_eq!(new_ramps(0, 0, 2), vec![0, 0]);
    }

    #[test]
    fn pairwise_sum_blocks_like_numpy() {
        // Below 8 elements: plain left-to-right.
        assert_eq!(numpy_sum(&[0.1, 0.2, 0.3]), (0.1 + 0.2) + 0.3);
        // 9 elements: eight accumulators, then the tail.
        let a: Vec<f64> = (1..=9).map(|k| 1.0 / k as f64).collect();
        let r = &a[..8];
        let want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])) + a[8];
        assert_eq!(numpy_sum(&a), want);
    }

    #[test]
    fn large_sums_add_buffer_blocks_in_order() {
        let a: Vec<f64> = (0..20_000).map(|k| 1.0 / (k as f64 + 1.0)).collect();
        let want = ((0.0 + pairwise_sum(&a[..8192])) + pairwise_sum(&a[8192..16384]))
            + pairwise_sum(&a[16384..]);
        assert_eq!(numpy_sum(&a), want);
    }
}
