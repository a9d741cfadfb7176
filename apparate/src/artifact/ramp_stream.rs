//! A streaming decoder for the exact shape of bootstrap / simulation pickles, straight into
//! typed vectors.
//!
//! `serde-pickle` builds a [`serde_pickle::Value`] per sample value (tens of millions for a
//! 100 MB file), twice (its internal tree, then the public one). This decoder runs a small
//! pickle machine whose lists are typed columns (`Vec<f64>`, `Vec<bool>`) in an arena, so a
//! Python float costs 8 bytes and no allocation of its own. It understands what CPython writes
//! for `{"conf": [[float, ...], ...], "acc": [[bool, ...], ...]}` with protocols 2 to 5:
//! lists, one dict, strings, None / bools / ints / floats, and numpy scalars
//! (`numpy.core.multiarray.scalar(dtype, raw)`, decoded like [`pickle::value::numpy_scalar`]).
//!
//! It returns `None` for anything else or anything invalid (other opcodes, shared lists, wrong
//! types, NaN, unequal lengths, ...); the caller then takes the generic path, which accepts
//! every valid file and words every error. For files it accepts it returns exactly what the
//! generic path returns (checked on every fixture and golden file by the tests below).

use crate::sim::RampData;
use pickle::opcodes::{run, Op, Sink};
use pickle::preflight::MAX_DEPTH;
use pickle::value::{decode_raw_scalar, DtypeHint, NumpyScalar};
use pickle::OpError;

/// A stack item. Lists live in the arena and are referred to by index.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a [u8]),
    Bytes(&'a [u8]),
    List(u32),
    /// The top-level dict (only one is allowed).
    Dict,
    /// `numpy.core.multiarray.scalar`.
    ScalarFn,
    /// `numpy.dtype`.
    DtypeFn,
    /// A dtype: its constructor arguments `('f8', False, True)`, the result of calling
    /// `numpy.dtype` on them, or its state tuple `(3, '<', ...)`; all three stand for the dtype
    /// in `serde-pickle`'s tree, with what they reveal of it.
    Dtype(DtypeHint),
    /// `(dtype, raw bytes)`: the arguments of `scalar`.
    ScalarArgs(DtypeHint, &'a [u8]),
}

/// A list's elements, typed while all have the same scalar type.
#[derive(Debug, Default)]
enum Col<'a> {
    #[default]
    Empty,
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Mixed(Vec<V<'a>>),
}

impl<'a> Col<'a> {
    fn len(&self) -> usize {
        match self {
            Col::Empty => 0,
            Col::F64(v) => v.len(),
            Col::Bool(v) => v.len(),
            Col::Mixed(v) => v.len(),
        }
    }

    /// Takes the elements out as a mixed list (leaving the column empty).
    fn take_mixed(&mut self) -> Vec<V<'a>> {
        match std::mem::take(self) {
            Col::Empty => Vec::new(),
            Col::F64(v) => v.into_iter().map(V::Float).collect(),
            Col::Bool(v) => v.into_iter().map(V::Bool).collect(),
            Col::Mixed(v) => v,
        }
    }

    #[inline]
    fn push(&mut self, v: V<'a>) {
        match (&mut *self, v) {
            (Col::F64(c), V::Float(x)) => c.push(x),
            (Col::Bool(c), V::Bool(b)) => c.push(b),
            (Col::Mixed(c), v) => c.push(v),
            (Col::Empty, V::Float(x)) => *self = Col::F64(vec![x]),
            (Col::Empty, V::Bool(b)) => *self = Col::Bool(vec![b]),
            (_, v) => {
                let mut mixed = self.take_mixed();
                mixed.push(v);
                *self = Col::Mixed(mixed);
            }
        }
    }
}

struct Machine<'a> {
    stack: Vec<V<'a>>,
    marks: Vec<usize>,
    memo: Vec<Option<V<'a>>>,
    memo_len: usize,
    /// Memo ids from here on are refused (see `memoize`).
    max_memo_id: usize,
    lists: Vec<Col<'a>>,
    /// Nesting depth of each list (1 + its deepest element), mirroring the generic limit.
    depths: Vec<u32>,
    dict: Option<Vec<(&'a [u8], V<'a>)>>,
}

/// Decodes `bytes` if it has the expected shape and valid content; `None` otherwise.
pub(crate) fn decode(bytes: &[u8]) -> Option<RampData> {
    let m = Machine {
        stack: Vec::with_capacity(1024),
        marks: Vec::new(),
        memo: Vec::new(),
        memo_len: 0,
        max_memo_id: bytes.len(),
        lists: Vec::new(),
        depths: Vec::new(),
        dict: None,
    };
    run(bytes, m).ok()
}

/// Anything `ramp_stream` does not take: the generic path decides.
struct Declined;

impl From<OpError> for Declined {
    fn from(_: OpError) -> Declined {
        Declined
    }
}

impl<'a> Sink<'a> for Machine<'a> {
    type Output = RampData;
    type Error = Declined;

    #[inline]
    fn op(&mut self, _offset: usize, op: Op<'a>, _raw: &'a [u8]) -> Result<(), Declined> {
        self.step(op).ok_or(Declined)
    }

    #[inline]
    fn fast_path(&mut self, op: &Op<'a>, rest: &'a [u8]) -> usize {
        if matches!(op, Op::Mark) {
            self.append_run(rest).unwrap_or(0)
        } else {
            0
        }
    }

    fn stop(mut self, _offset: usize) -> Result<RampData, Declined> {
        if !matches!(self.stack.pop(), Some(V::Dict)) {
            return Err(Declined);
        }
        self.finish().ok_or(Declined)
    }
}

impl<'a> Machine<'a> {
    #[inline]
    fn step(&mut self, op: Op<'a>) -> Option<()> {
        match op {
            Op::Float(x) => self.stack.push(V::Float(x)),
            Op::Bool(b) => self.stack.push(V::Bool(b)),
            Op::Int(i) => self.stack.push(V::Int(i)),
            Op::None => self.stack.push(V::None),
            Op::Mark => self.marks.push(self.stack.len()),
            Op::Appends => {
                let mark = self.marks.pop()?;
                let target = self.list_below(mark)?;
                self.extend_list(target, mark)?;
            }
            Op::Append => {
                let item = self.pop()?;
                let mark = self.stack.len();
                let target = self.list_below(mark)?;
                self.stack.push(item);
                self.extend_list(target, mark)?;
            }
            Op::Ignored => {}
            Op::Memoize => {
                let id = self.memo_len;
                self.memoize(id)?;
            }
            Op::Put(id) => self.memoize(usize::try_from(id).ok()?)?,
            Op::Get(id) => {
                let v = (*self.memo.get(usize::try_from(id).ok()?)?)?;
                if matches!(v, V::List(_) | V::Dict) {
                    // Shared containers: leave them to the generic path.
                    return None;
                }
                self.stack.push(v);
            }
            Op::Unicode(s) => {
                std::str::from_utf8(s).ok()?;
                self.stack.push(V::Str(s));
            }
            Op::Bytes(b) => self.stack.push(V::Bytes(b)),
            Op::EmptyList => {
                let id = u32::try_from(self.lists.len()).ok()?;
                self.lists.push(Col::Empty);
                self.depths.push(1);
                self.stack.push(V::List(id));
            }
            Op::EmptyDict => {
                if self.dict.is_some() {
                    return None;
                }
                self.dict = Some(Vec::new());
                self.stack.push(V::Dict);
            }
            Op::SetItems | Op::SetItem => {
                let mark = match op {
                    Op::SetItems => self.marks.pop()?,
                    _ => self.stack.len().checked_sub(2)?,
                };
                if mark <= self.base() || !matches!(self.stack.get(mark - 1), Some(V::Dict)) {
                    return None;
                }
                let items = self.stack.get(mark..)?;
                if items.len() % 2 != 0 {
                    return None;
                }
                let dict = self.dict.as_mut()?;
                for pair in items.chunks_exact(2) {
                    let (V::Str(key), value) = (pair[0], pair[1]) else {
                        return None;
                    };
                    if let V::List(id) = value {
                        if self.depths[id as usize] + 1 > MAX_DEPTH {
                            return None;
                        }
                    }
                    dict.push((key, value));
                }
                self.stack.truncate(mark);
            }
            Op::Global(module, name) => {
                let f = global(module, name)?;
                self.stack.push(f);
            }
            Op::StackGlobal => {
                let V::Str(name) = self.pop()? else {
                    return None;
                };
                let V::Str(module) = self.pop()? else {
                    return None;
                };
                self.stack.push(global(module, name)?);
            }
            Op::TupleN(3) => {
                // `numpy.dtype` arguments: ('f8', False, True)
                let c = self.pop()?;
                let b = self.pop()?;
                let a = self.pop()?;
                let (V::Str(s), V::Bool(_), V::Bool(_)) = (a, b, c) else {
                    return None;
                };
                self.stack.push(V::Dtype(DtypeHint::from_type_str(s)));
            }
            Op::TupleN(2) => {
                // `scalar` arguments: (dtype, raw bytes)
                let raw = self.pop()?;
                let dtype = self.pop()?;
                let (V::Dtype(hint), V::Bytes(raw)) = (dtype, raw) else {
                    return None;
                };
                self.stack.push(V::ScalarArgs(hint, raw));
            }
            Op::Tuple => {
                // A dtype's state tuple: (3, '<', None, None, None, -1, -1, 0)
                let mark = self.marks.pop()?;
                let items = self.stack.get(mark..)?;
                let [V::Int(_), V::Str(order), ..] = items else {
                    return None;
                };
                let hint = DtypeHint::from_byte_order(order);
                self.stack.truncate(mark);
                self.stack.push(V::Dtype(hint));
            }
            Op::Reduce => {
                let args = self.pop()?;
                let f = self.pop()?;
                let result = match (f, args) {
                    (V::DtypeFn, V::Dtype(hint)) => V::Dtype(hint),
                    (V::ScalarFn, V::ScalarArgs(hint, raw)) => {
                        match decode_raw_scalar(hint, raw)? {
                            NumpyScalar::Float(x) => V::Float(x),
                            NumpyScalar::Int(i) => V::Int(i),
                            NumpyScalar::Bool(b) => V::Bool(b),
                        }
                    }
                    _ => return None,
                };
                self.stack.push(result);
            }
            Op::Build => {
                // A dtype's state replaces the dtype (as in `serde-pickle`).
                let state = self.pop()?;
                let (V::Dtype(_), V::Dtype(_)) = (self.pop()?, state) else {
                    return None;
                };
                self.stack.push(state);
            }
            _ => return None,
        }
        Some(())
    }

    /// The stack position of the innermost mark (0 without one).
    fn base(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Pops the top item, never reaching below the innermost mark (as the real machine).
    #[inline]
    fn pop(&mut self) -> Option<V<'a>> {
        if self.stack.len() <= self.base() {
            return None;
        }
        self.stack.pop()
    }

    /// The hot path: right after a `MARK` above a list, a run of `BINFLOAT`s (or of
    /// `NEWTRUE` / `NEWFALSE`) closed by `APPENDS` goes straight into the list's column, as
    /// the normal path would put it there. Returns the bytes used, or `None` to take the normal
    /// path (another opcode inside the batch, e.g. a `FRAME`, or a column of another type).
    #[inline]
    fn append_run(&mut self, rest: &[u8]) -> Option<usize> {
        if self.stack.len() <= self.base() {
            return None;
        }
        let Some(V::List(id)) = self.stack.last() else {
            return None;
        };
        let col = self.lists.get_mut(*id as usize)?;
        match (rest.first()?, &*col) {
            (b'G', Col::Empty | Col::F64(_)) => {
                let floats = rest.chunks_exact(9).take_while(|c| c[0] == b'G').count();
                if rest.get(floats * 9) != Some(&b'e') {
                    return None;
                }
                if matches!(col, Col::Empty) {
                    *col = Col::F64(Vec::with_capacity(floats));
                }
                let Col::F64(c) = col else { return None };
                c.extend(rest[..floats * 9].chunks_exact(9).map(|item| {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(&item[1..]);
                    f64::from_be_bytes(be)
                }));
                Some(floats * 9 + 1)
            }
            (0x88 | 0x89, Col::Empty | Col::Bool(_)) => {
                let flags = rest.iter().take_while(|&&b| b == 0x88 || b == 0x89).count();
                if rest.get(flags) != Some(&b'e') {
                    return None;
                }
                if matches!(col, Col::Empty) {
                    *col = Col::Bool(Vec::with_capacity(flags));
                }
                let Col::Bool(c) = col else { return None };
                c.extend(rest[..flags].iter().map(|&b| b == 0x88));
                Some(flags + 1)
            }
            _ => None,
        }
    }

    /// The list just below the stack position `mark`.
    #[inline]
    fn list_below(&self, mark: usize) -> Option<u32> {
        if mark <= self.base() {
            return None;
        }
        match self.stack.get(mark - 1)? {
            V::List(id) => Some(*id),
            _ => None,
        }
    }

    /// Moves the stack items above `mark` into list `target`.
    #[inline]
    fn extend_list(&mut self, target: u32, mark: usize) -> Option<()> {
        let t = target as usize;
        let items = self.stack.get(mark..)?;
        let mut depth = self.depths[t];
        for v in items {
            if let V::List(child) = v {
                depth = depth.max(self.depths[*child as usize] + 1);
            }
        }
        if depth > MAX_DEPTH {
            return None;
        }
        self.depths[t] = depth;
        let col = &mut self.lists[t];
        match col {
            Col::F64(c) if items.iter().all(|v| matches!(v, V::Float(_))) => {
                c.extend(items.iter().map(|v| match v {
                    V::Float(x) => *x,
                    _ => f64::NAN,
                }));
            }
            _ => {
                for v in items {
                    col.push(*v);
                }
            }
        }
        self.stack.truncate(mark);
        Some(())
    }

    fn memoize(&mut self, id: usize) -> Option<()> {
        let top = *self.stack.last()?;
        // Ids are dense in what CPython writes, so below the number of opcodes: refuse others
        // rather than allocate (memory stays linear in the input).
        if id >= self.max_memo_id {
            return None;
        }
        if id >= self.memo.len() {
            self.memo.resize(id + 1, None);
        }
        if self.memo[id].is_none() {
            self.memo_len += 1;
        }
        self.memo[id] = Some(top);
        Some(())
    }

    /// Checks the decoded dict and moves the typed columns into [`RampData`].
    fn finish(mut self) -> Option<RampData> {
        let dict = self.dict.take()?;
        let lookup = |key: &[u8]| dict.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let (V::List(conf), V::List(acc)) = (lookup(b"conf")?, lookup(b"acc")?) else {
            return None;
        };
        let conf_ramps = self.ramp_ids(conf)?;
        let acc_ramps = self.ramp_ids(acc)?;
        if conf_ramps.len() != acc_ramps.len() || conf_ramps.is_empty() {
            return None;
        }
        let n = self.lists.get(conf_ramps[0] as usize)?.len();
        let mut data = RampData::default();
        for &id in &conf_ramps {
            let column = match std::mem::take(self.lists.get_mut(id as usize)?) {
                Col::Empty => Vec::new(),
                Col::F64(v) => v,
                Col::Mixed(items) => items
                    .into_iter()
                    .map(|v| match v {
                        V::Float(x) => Some(x),
                        V::Int(i) => Some(i as f64),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()?,
                Col::Bool(_) => return None,
            };
            if column.len() != n || !column.iter().all(|x| x.is_finite()) {
                return None;
            }
            data.conf.push(column);
        }
        for &id in &acc_ramps {
            let column = match std::mem::take(self.lists.get_mut(id as usize)?) {
                Col::Empty => Vec::new(),
                Col::Bool(v) => v,
                Col::Mixed(items) => items
                    .into_iter()
                    .map(|v| match v {
                        V::Bool(b) => Some(b),
                        V::Int(0) => Some(false),
                        V::Int(1) => Some(true),
                        _ => None,
                    })
                    .collect::<Option<Vec<bool>>>()?,
                Col::F64(_) => return None,
            };
            if column.len() != n {
                return None;
            }
            data.acc.push(column);
        }
        Some(data)
    }

    /// The list ids of ramps `0 .. R-1` of an outer `conf` / `acc` list (`R >= 1`).
    fn ramp_ids(&self, outer: u32) -> Option<Vec<u32>> {
        let Col::Mixed(items) = self.lists.get(outer as usize)? else {
            return None;
        };
        let (_final_exit, ramps) = items.split_last()?;
        ramps
            .iter()
            .map(|v| match v {
                V::List(id) => Some(*id),
                _ => None,
            })
            .collect()
    }
}

/// The two numpy callables a scalar needs; anything else is left to the generic path.
fn global<'a>(module: &[u8], name: &[u8]) -> Option<V<'a>> {
    match (module, name) {
        (b"numpy.core.multiarray" | b"numpy._core.multiarray", b"scalar") => Some(V::ScalarFn),
        (b"numpy", b"dtype") => Some(V::DtypeFn),
        _ => None,
    }
}
