//! Reading Python / numpy scalars out of a decoded [`Value`] tree.
//!
//! The tree has the shape `serde-pickle`'s `keep_restore_state()` mode gives (the decoder is
//! ours, see the `decoder` module for why): class instances (the profile trees) come out as
//! their attribute dicts and numpy scalars as `Tuple([<dtype stand-in>, Bytes(raw)])`, because
//! a `numpy.float64` / `numpy.bool_` is pickled as a call
//! `numpy.core.multiarray.scalar(dtype, raw_bytes)`. The dtype stand-in is the constructor
//! argument tuple `('f8', False, True)` when the dtype is a memo reference, or the dtype's
//! state tuple `(3, '<', None, None, None, -1, -1, 0)` on its first occurrence (which does not
//! name the kind). The normalisers use the kind when it is visible and otherwise decode the raw
//! bytes by their length: 1 byte is a bool, 8 bytes a float64 (the Apparate spec §2.6). They never turn a
//! value of another type into `None` or a number silently.

use std::collections::BTreeMap;

use serde_pickle::{HashableValue, Value};

/// A number as Python arithmetic would use it: a Python float or int, or a numpy float /
/// integer scalar. Bools, `None`, strings and containers give `None` (no silent coercion).
pub fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::F64(x) => Some(*x),
        Value::I64(i) => Some(*i as f64),
        _ => match numpy_scalar(v)? {
            NumpyScalar::Float(x) => Some(x),
            NumpyScalar::Int(i) => Some(i as f64),
            NumpyScalar::Bool(_) => None,
        },
    }
}

/// A truth flag: a Python bool, a `numpy.bool_`, or the integers 0 / 1 (Python or numpy).
pub fn bool_of(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::I64(0) => Some(false),
        Value::I64(1) => Some(true),
        _ => match numpy_scalar(v)? {
            NumpyScalar::Bool(b) => Some(b),
            NumpyScalar::Int(0) => Some(false),
            NumpyScalar::Int(1) => Some(true),
            _ => None,
        },
    }
}

/// An integer that fits `i64`: a Python int or a numpy integer scalar (not a bool).
pub fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::I64(i) => Some(*i),
        _ => match numpy_scalar(v)? {
            NumpyScalar::Int(i) => Some(i),
            _ => None,
        },
    }
}

/// The value under string key `key` of a dict (a class instance's attribute).
pub fn dict_get<'v>(dict: &'v BTreeMap<HashableValue, Value>, key: &str) -> Option<&'v Value> {
    dict.get(&HashableValue::String(key.to_owned()))
}

/// A short, one-line description of a value for error messages: its type and, for scalars,
/// its value (`NaN`, `float 1.5`, `int 3`, `str "abc"`, `a list of 12 items`).
pub fn describe(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::I64(i) => format!("int {i}"),
        Value::Int(_) => "an int too large for 64 bits".into(),
        Value::F64(x) => describe_float(*x),
        Value::Bytes(b) => format!("bytes of length {}", b.len()),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                format!("str {short:?}...")
            } else {
                format!("str {short:?}")
            }
        }
        Value::List(items) => format!("a list of {} items", items.len()),
        Value::Tuple(items) => match numpy_scalar(v) {
            Some(NumpyScalar::Float(x)) => format!("numpy {}", describe_float(x)),
            Some(NumpyScalar::Int(i)) => format!("numpy int {i}"),
            Some(NumpyScalar::Bool(b)) => {
                format!("numpy bool {}", if b { "True" } else { "False" })
            }
            None => format!("a tuple of {} items", items.len()),
        },
        Value::Set(items) | Value::FrozenSet(items) => format!("a set of {} items", items.len()),
        Value::Dict(d) => format!("a dict (or object) with {} keys", d.len()),
    }
}

fn describe_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("float {x:?}")
    }
}

/// A decoded numpy scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumpyScalar {
    /// A `numpy.float64` or `numpy.float32`.
    Float(f64),
    /// A numpy integer that fits `i64`.
    Int(i64),
    /// A `numpy.bool_`.
    Bool(bool),
}

/// The dtype kind letter (`f`, `i`, `u`, `b`) and byte order, where the stand-in shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DtypeHint {
    /// `f`, `i`, `u` or `b`, where known.
    pub kind: Option<u8>,
    /// The raw bytes are big-endian.
    pub big_endian: bool,
}

impl DtypeHint {
    /// From a dtype constructor argument tuple `('f8', False, True)`.
    pub fn from_type_str(s: &[u8]) -> DtypeHint {
        let (big_endian, rest) = match s {
            [b'>', rest @ ..] => (true, rest),
            [b'<' | b'=' | b'|', rest @ ..] => (false, rest),
            _ => (false, s),
        };
        let kind = match rest.first() {
            Some(b'f') => Some(b'f'),
            Some(b'i') => Some(b'i'),
            Some(b'u') => Some(b'u'),
            Some(b'b' | b'?') => Some(b'b'),
            _ => None,
        };
        DtypeHint { kind, big_endian }
    }

    /// From a dtype state tuple `(3, '<', ...)`: the byte order only.
    pub fn from_byte_order(order: &[u8]) -> DtypeHint {
        DtypeHint {
            kind: None,
            big_endian: order == b">",
        }
    }
}

/// Recognises `Tuple([<dtype stand-in tuple>, Bytes(raw)])` and decodes `raw`.
pub fn numpy_scalar(v: &Value) -> Option<NumpyScalar> {
    let Value::Tuple(items) = v else { return None };
    let [Value::Tuple(dtype), Value::Bytes(raw)] = items.as_slice() else {
        return None;
    };
    let hint = match dtype.as_slice() {
        [Value::String(s), ..] => DtypeHint::from_type_str(s.as_bytes()),
        [Value::I64(_), Value::String(order), ..] => DtypeHint::from_byte_order(order.as_bytes()),
        _ => DtypeHint::default(),
    };
    decode_raw_scalar(hint, raw)
}

/// Decodes a numpy scalar's raw bytes: by the dtype kind where known, otherwise by length
/// (1 byte: bool, 8 bytes: float64, 4 bytes: float32).
pub fn decode_raw_scalar(hint: DtypeHint, raw: &[u8]) -> Option<NumpyScalar> {
    macro_rules! num {
        ($t:ty) => {{
            let a: [u8; std::mem::size_of::<$t>()] = raw.try_into().ok()?;
            if hint.big_endian {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }
        }};
    }
    match (hint.kind, raw.len()) {
        (Some(b'b'), 1) | (None, 1) => match raw[0] {
            0 => Some(NumpyScalar::Bool(false)),
            1 => Some(NumpyScalar::Bool(true)),
            _ => None,
        },
        (Some(b'f') | None, 8) => Some(NumpyScalar::Float(num!(f64))),
        (Some(b'f') | None, 4) => Some(NumpyScalar::Float(num!(f32).into())),
        (Some(b'i'), 8) => Some(NumpyScalar::Int(num!(i64))),
        (Some(b'i'), 4) => Some(NumpyScalar::Int(num!(i32).into())),
        (Some(b'i'), 2) => Some(NumpyScalar::Int(num!(i16).into())),
        (Some(b'i'), 1) => Some(NumpyScalar::Int(num!(i8).into())),
        (Some(b'u'), 8) => i64::try_from(num!(u64)).ok().map(NumpyScalar::Int),
        (Some(b'u'), 4) => Some(NumpyScalar::Int(num!(u32).into())),
        (Some(b'u'), 2) => Some(NumpyScalar::Int(num!(u16).into())),
        (Some(b'u'), 1) => Some(NumpyScalar::Int(raw[0].into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np(dtype: Vec<Value>, raw: &[u8]) -> Value {
        Value::Tuple(vec![Value::Tuple(dtype), Value::Bytes(raw.to_vec())])
    }

    fn ctor(s: &str) -> Vec<Value> {
        vec![
            Value::String(s.into()),
            Value::Bool(false),
            Value::Bool(true),
        ]
    }

    fn state(order: &str) -> Vec<Value> {
        vec![
            Value::I64(3),
            Value::String(order.into()),
            Value::None,
            Value::None,
            Value::None,
            Value::I64(-1),
            Value::I64(-1),
            Value::I64(0),
        ]
    }

    #[test]
    fn numpy_scalars_decode_by_kind_or_length() {
        let bits = 0.75f64.to_le_bytes();
        assert_eq!(float_of(&np(ctor("f8"), &bits)), Some(0.75));
        assert_eq!(float_of(&np(state("<"), &bits)), Some(0.75));
        assert_eq!(
            float_of(&np(state(">"), &0.75f64.to_be_bytes())),
            Some(0.75)
        );
        assert_eq!(bool_of(&np(ctor("b1"), &[1])), Some(true));
        assert_eq!(bool_of(&np(state("|"), &[0])), Some(false));
        assert_eq!(bool_of(&np(state("|"), &[7])), None);
        assert_eq!(int_of(&np(ctor("i8"), &7i64.to_le_bytes())), Some(7));
        assert_eq!(float_of(&np(ctor("i8"), &7i64.to_le_bytes())), Some(7.0));
        assert_eq!(bool_of(&np(ctor("i8"), &1i64.to_le_bytes())), Some(true));
        assert_eq!(float_of(&np(ctor("b1"), &[1])), None);
        assert_eq!(float_of(&np(ctor("f8"), &[1, 2, 3])), None);
    }

    #[test]
    fn python_scalars_are_not_coerced_across_kinds() {
        assert_eq!(float_of(&Value::I64(0)), Some(0.0));
        assert_eq!(float_of(&Value::Bool(true)), None);
        assert_eq!(float_of(&Value::None), None);
        assert_eq!(bool_of(&Value::I64(2)), None);
        assert_eq!(bool_of(&Value::F64(1.0)), None);
        assert_eq!(int_of(&Value::F64(1.0)), None);
    }

    #[test]
    fn descriptions_are_short() {
        assert_eq!(describe(&Value::F64(f64::NAN)), "NaN");
        assert_eq!(describe(&Value::F64(f64::NEG_INFINITY)), "-inf");
        assert_eq!(describe(&Value::String("x".repeat(100))).len(), 49);
        assert_eq!(
            describe(&Value::List(vec![Value::None; 3])),
            "a list of 3 items"
        );
        assert_eq!(
            describe(&np(ctor("f8"), &f64::NAN.to_le_bytes())),
            "numpy NaN"
        );
    }
}
