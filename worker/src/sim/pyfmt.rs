//! Python and numpy text formatting for the artifact's log lines (spec §10.1).

use std::fmt::Write;

/// Python's `repr(float)`: shortest round-trip digits, at least one fractional digit,
/// scientific notation below 1e-4 and from 1e16 up (`1e-05`, `1.5e+16`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote and no double
/// quote; backslashes and the chosen quote escaped, control characters as `\n`, `\t`, `\xNN`.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's repr of a list of floats: `[0.0, 1.27]`.
pub fn py_float_list(xs: &[f64]) -> String {
    let items: Vec<String> = xs.iter().map(|&x| py_float(x)).collect();
    format!("[{}]", items.join(", "))
}

/// Python's repr of a list of ints: `[3, 7, 10]`.
pub fn py_int_list(xs: &[usize]) -> String {
    let items: Vec<String> = xs.iter().map(usize::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Python's repr of a dict from int keys to floats, keys in the given (ascending) order:
/// `{3: 1.0, 16: 1.0}`.
pub fn py_int_float_dict<'a>(items: impl IntoIterator<Item = (&'a usize, &'a f64)>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", py_float(*v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// numpy 1.x `str()` of a 1-D float64 array with default print options (`precision=8`,
/// `floatmode='maxprec'`, `linewidth=75`): `[0. 1.]`, `[0.5  0.25 0.25]`.
///
/// Positional notation only; numpy switches to scientific notation when the smallest non-zero
/// magnitude is below 1e-4 or the max/min ratio exceeds 1e3, which exit rates of batches of
/// at most 64 samples never reach.
pub fn numpy_array(xs: &[f64]) -> String {
    // Each element: shortest round-trip digits, cut to at most 8 fractional digits.
    let parts: Vec<(String, String)> = xs
        .iter()
        .map(|&x| {
            let repr = py_float(x);
            let (int_part, frac) = repr.split_once('.').unwrap_or((&repr, ""));
            let (int_part, frac) = if frac.len() > 8 || frac.contains('e') {
                let s = format!("{x:.8}");
                let (i, f) = s.split_once('.').unwrap_or((&s, ""));
                (i.to_string(), f.trim_end_matches('0').to_string())
            } else {
                let f = frac.trim_end_matches('0');
                (int_part.to_string(), f.to_string())
            };
            (int_part, frac)
        })
        .collect();
    let pad_left = parts.iter().map(|(i, _)| i.len()).max().unwrap_or(0);
    let pad_right = parts.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    let words: Vec<String> = parts
        .iter()
        .map(|(i, f)| format!("{i:>pad_left$}.{f:<pad_right$}"))
        .collect();
    // numpy's _formatArray line wrapping: hanging indent " ", width 75 - len("]").
    const LINE_WIDTH: usize = 75 - 1;
    let mut s = String::new();
    let mut line = String::from(" ");
    for (k, word) in words.iter().enumerate() {
        if line.len() + word.len() > LINE_WIDTH && line.len() > 1 {
            s.push_str(line.trim_end());
            s.push('\n');
            line = String::from(" ");
        }
        line.push_str(word);
        if k + 1 < words.len() {
            line.push(' ');
        }
    }
    s.push_str(&line);
    format!("[{}]", &s[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.0), "0.0");
        assert_eq!(py_float(-2.846636104012216), "-2.846636104012216");
        assert_eq!(py_float(0.020560000000000002), "0.020560000000000002");
        assert_eq!(py_float(34.49999999999999), "34.49999999999999");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e16), "1.5e+16");
        assert_eq!(py_float(123456789012345.6), "123456789012345.6");
        assert_eq!(py_float(20.0), "20.0");
    }

    #[test]
    fn numpy_array_repr() {
        assert_eq!(numpy_array(&[0.0, 1.0]), "[0. 1.]");
        assert_eq!(numpy_array(&[1.0, 0.0, 0.0, 0.0]), "[1. 0. 0. 0.]");
        assert_eq!(numpy_array(&[0.5, 0.25, 0.25]), "[0.5  0.25 0.25]");
        assert_eq!(numpy_array(&[0.875, 0.0, 0.125]), "[0.875 0.    0.125]");
        assert_eq!(
            numpy_array(&[1.0 / 3.0, 2.0 / 3.0]),
            "[0.33333333 0.66666667]"
        );
    }

    #[test]
    fn python_str_repr() {
        assert_eq!(py_str("video"), "'video'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn python_containers() {
        assert_eq!(py_int_list(&[3, 7, 10]), "[3, 7, 10]");
        assert_eq!(py_float_list(&[0.0, 1.27]), "[0.0, 1.27]");
        let m: std::collections::BTreeMap<usize, f64> = [(3, 1.0), (16, 1.0)].into();
        assert_eq!(py_int_float_dict(&m), "{3: 1.0, 16: 1.0}");
    }
}
