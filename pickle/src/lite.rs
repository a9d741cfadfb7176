//! A light pickle machine for the object-shaped pickles (profile trees, batch decisions): one
//! pass, no allocation per value, no [`serde_pickle::Value`] tree.
//!
//! The generic path ([`crate::preflight`], then [`crate::decoder`], then the conversion to
//! `serde-pickle`'s tree) allocates a `String` per dict key and per memo fetch and a
//! `BTreeMap` per object; a profile tree of a few hundred modules costs milliseconds. This
//! machine keeps values as small `Copy` items ([`V`]): strings are copied once into a text
//! arena, containers live in arenas and are referred to by index, and the arenas are reused
//! by the thread's next decode. Of a dict it keeps only the values of the keys its caller asks
//! for (last one wins, as in the generic tree); of lists and tuples it keeps every element.
//! It runs on the shared opcode loop ([`crate::opcodes::run`]) as a [`Sink`]; its hot opcodes
//! are decoded straight from the bytes in [`Sink::direct`], each with one dispatch.
//!
//! It returns `None` for anything it does not handle or that the generic path might reject,
//! and the caller then takes the generic path, which handles every valid file and words every
//! error. So a stream it accepts must decode without error on the generic path, and give the
//! same values there:
//!
//! * It handles the binary opcodes of protocols 2 to 5 that CPython writes for plain objects:
//!   strings, bytes, None / bools / ints / floats, tuples, lists, dicts with `str` keys,
//!   `GLOBAL` / `STACK_GLOBAL`, `NEWOBJ` / `BUILD` (an instance becomes its state) and
//!   `REDUCE` of a callable the generic decoder gives no meaning to (the result is the
//!   argument tuple, e.g. a numpy scalar). Text opcodes, sets, `DUP`, `POP`, `OBJ`, `INST`,
//!   `NEWOBJ_EX`, `LIST`, `DICT` and `REDUCE` of `set`, `list`, `int`, ... are left to the
//!   generic path.
//! * It repeats the checks of [`crate::preflight`]: nesting depth (the same computation and
//!   limit), the expansion bound (an upper bound on the same count, against the same limit),
//!   no container changed after a memo fetch took a second reference (so sharing a container
//!   by index is the same as the generic path's copying), stack and mark discipline, and no
//!   bytes after `STOP`.
//! * It refuses what the generic decoder or conversion would reject: strings that are not
//!   UTF-8, operands of the wrong type, dict keys other than `str`, fetches of memo ids never
//!   stored, and a class or function reference left in the result (unless the caller asks for
//!   those to become `None`, as the generic option does). It also refuses re-used memo ids
//!   and containers memoized twice, which CPython never writes.
//!
//! The tests check on every golden and fixture file, on corrupted files and on random object
//! trees that whatever it accepts decodes on the generic path and gives the same result.

use crate::decoder::{classify_global, Global};
use crate::opcodes::{run, Op, OpError, Sink};
use crate::preflight::{work_limit, MAX_DEPTH};

/// One value: a scalar, a string in the input, or a container in the arena. 16 bytes, so
/// moving values around stays cheap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum V {
    /// `None`.
    None,
    /// A Python int from `BININT`, `BININT1` or `BININT2`.
    Int(i64),
    /// A Python float.
    Float(f64),
    /// A string (index into the string table, see [`Lite::str`]).
    Str(u32),
    /// Any other scalar: a bool, bytes, a `LONG1` / `LONG4` integer. Nothing reads these.
    Other,
    /// A reference to a class or function the generic decoder gives no meaning to
    /// ([`Global::Other`]).
    Global,
    /// A reference to `set`, `list`, `int`, ... (any other [`Global`]).
    KnownGlobal,
    /// A tuple (index into the container arena).
    Tuple(u32),
    /// A list (index into the container arena).
    List(u32),
    /// A dict (index into the container arena).
    Dict(u32),
}

/// A decoded string: where its text lies in [`Arenas::text`], and which key of interest it
/// is (an index into the keys, or `NO_KEY`).
#[derive(Clone, Copy, Debug)]
struct Text {
    start: u32,
    len: u32,
    key: u8,
}

/// Not a key of interest.
const NO_KEY: u8 = u8::MAX;

/// The `MEMOIZE` opcode.
const MEMOIZE: u8 = 0x94;

/// No chunk.
const NIL: u32 = u32::MAX;

/// Items just moved from the stack to the element arena: where, how many, whether all are
/// dicts, and their deepest depth and total weight (as pre-flight counts them).
#[derive(Clone, Copy, Debug)]
struct Moved {
    start: u32,
    len: u32,
    all_dicts: bool,
    depth: u32,
    weight: u64,
}

/// A run of consecutive elements of one list or tuple in the element arena.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    start: u32,
    len: u32,
    next: u32,
}

/// A list, tuple or dict.
#[derive(Clone, Copy, Debug)]
struct Cont {
    /// Nesting depth and expanded size, as [`crate::preflight`] computes them.
    depth: u32,
    weight: u64,
    /// A memo fetch took a second reference: it must not change any more.
    shared: bool,
    /// It was memoized (once is all CPython does).
    memoized: bool,
    /// Lists: every element is a dict.
    all_dicts: bool,
    /// A tuple: its elements are `items[first..first + len]`.
    flat: bool,
    /// Lists: the first and last element chunk. Tuples: see `flat`. Dicts: `first` is the
    /// row in the field table.
    first: u32,
    last: u32,
    /// Lists and tuples: the number of elements.
    len: u32,
}

impl Cont {
    fn new(depth: u32, weight: u64) -> Cont {
        Cont {
            depth,
            weight,
            shared: false,
            memoized: false,
            all_dicts: true,
            flat: false,
            first: NIL,
            last: NIL,
            len: 0,
        }
    }
}

/// The memory of one decode. Each thread keeps the arenas of its last two decodes (a CV
/// table needs two trees at once) for the next ones ([`Lite`]'s `Drop`), so reading a
/// scenario's dozen profile files touches fresh memory only once or twice.
#[derive(Debug, Default)]
struct Arenas {
    stack: Vec<V>,
    marks: Vec<usize>,
    memo: Vec<Option<V>>,
    /// The text of all strings, one after the other.
    text: String,
    strs: Vec<Text>,
    conts: Vec<Cont>,
    items: Vec<V>,
    chunks: Vec<Chunk>,
    /// For every dict, one slot per key of interest.
    fields: Vec<Option<V>>,
}

/// Arenas larger than this (in bytes, roughly) are not kept for the next decode.
const KEEP_AT_MOST: usize = 16 << 20;

/// Spare arenas kept per thread.
const SPARES: usize = 2;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Arenas>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Arenas {
    /// This thread's spare arenas, emptied, or new ones.
    fn take() -> Arenas {
        let mut a = SPARE
            .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
            .ok()
            .flatten()
            .unwrap_or_default();
        a.stack.clear();
        a.marks.clear();
        a.memo.clear();
        a.text.clear();
        a.strs.clear();
        a.conts.clear();
        a.items.clear();
        a.chunks.clear();
        a.fields.clear();
        a
    }

    /// Keeps `a` for this thread's next decode, unless it is large.
    fn give_back(a: Arenas) {
        let size = a.stack.capacity() * size_of::<V>()
            + a.marks.capacity() * size_of::<usize>()
            + a.memo.capacity() * size_of::<Option<V>>()
            + a.text.capacity()
            + a.strs.capacity() * size_of::<Text>()
            + a.conts.capacity() * size_of::<Cont>()
            + a.items.capacity() * size_of::<V>()
            + a.chunks.capacity() * size_of::<Chunk>()
            + a.fields.capacity() * size_of::<Option<V>>();
        if size <= KEEP_AT_MOST {
            // Not kept while the thread shuts down, or if the pool is full.
            let _ = SPARE.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.len() < SPARES {
                        s.push(a);
                    }
                }
            });
        }
    }
}

/// A decoded stream: the result and the arenas it refers to.
#[derive(Debug)]
pub struct Lite {
    root: V,
    a: Arenas,
    keys: &'static [&'static str],
}

impl Drop for Lite {
    fn drop(&mut self) {
        Arenas::give_back(std::mem::take(&mut self.a));
    }
}

impl Lite {
    /// The unpickled object.
    pub fn root(&self) -> V {
        self.root
    }

    /// The text of a string value (`None` cannot happen).
    pub fn str(&self, s: u32) -> Option<&str> {
        let t = self.a.strs.get(s as usize)?;
        let start = t.start as usize;
        self.a.text.get(start..start.checked_add(t.len as usize)?)
    }

    /// The value of `dict` under `keys[slot]` (the last one stored), if any.
    pub fn field(&self, dict: u32, slot: usize) -> Option<V> {
        let cont = self.a.conts.get(dict as usize)?;
        let row = (cont.first as usize).checked_mul(self.keys.len())?;
        *self.a.fields.get(row.checked_add(slot)?)?
    }

    /// The number of elements of a list or tuple.
    pub fn len(&self, seq: u32) -> usize {
        self.a.conts.get(seq as usize).map_or(0, |c| c.len as usize)
    }

    /// Whether every element of the list is a dict.
    pub fn all_dicts(&self, list: u32) -> bool {
        self.a.conts.get(list as usize).is_some_and(|c| c.all_dicts)
    }

    /// Whether the light value `v` is what the generic path decoded (`value`): the same
    /// scalars and strings, the same list and tuple elements, and for dicts the same values
    /// under the keys of interest. (What the tests check of every stream both paths accept.)
    pub fn agrees(&self, v: V, value: &serde_pickle::Value) -> bool {
        use serde_pickle::{HashableValue, Value};
        match (v, value) {
            (V::None, Value::None) => true,
            (V::Int(i), Value::I64(j)) => i == *j,
            (V::Float(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
            (V::Str(s), Value::String(t)) => self.str(s) == Some(t.as_str()),
            (V::Other, Value::Bool(_) | Value::Bytes(_) | Value::Int(_) | Value::I64(_)) => true,
            (V::Tuple(t), Value::Tuple(items)) | (V::List(t), Value::List(items)) => {
                self.len(t) == items.len()
                    && self.elements(t).len() == items.len()
                    && self.elements(t).zip(items).all(|(a, b)| self.agrees(a, b))
            }
            (V::Dict(d), Value::Dict(map)) => {
                self.keys.iter().enumerate().all(|(slot, k)| {
                    match (
                        self.field(d, slot),
                        map.get(&HashableValue::String((*k).into())),
                    ) {
                        (None, None) => true,
                        (Some(a), Some(b)) => self.agrees(a, b),
                        _ => false,
                    }
                })
            }
            _ => false,
        }
    }

    /// The elements of a list or tuple, in order.
    pub fn elements(&self, seq: u32) -> Elements<'_> {
        match self.a.conts.get(seq as usize) {
            Some(c) if c.flat => Elements {
                lite: self,
                chunk: NIL,
                pos: c.first,
                end: c.first.saturating_add(c.len),
                left: c.len as usize,
            },
            c => Elements {
                lite: self,
                chunk: c.map_or(NIL, |c| c.first),
                pos: 0,
                end: 0,
                left: c.map_or(0, |c| c.len as usize),
            },
        }
    }
}

/// Iterator over the elements of a list or tuple.
#[derive(Clone, Debug)]
pub struct Elements<'t> {
    lite: &'t Lite,
    chunk: u32,
    pos: u32,
    end: u32,
    left: usize,
}

impl Iterator for Elements<'_> {
    type Item = V;

    #[inline]
    fn next(&mut self) -> Option<V> {
        loop {
            if self.pos < self.end {
                let v = self.lite.a.items.get(self.pos as usize).copied();
                self.pos += 1;
                self.left = self.left.saturating_sub(1);
                return v;
            }
            let c = self.lite.a.chunks.get(self.chunk as usize)?;
            self.pos = c.start;
            self.end = c.start.saturating_add(c.len);
            self.chunk = c.next;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Elements<'_> {}

struct Machine {
    memo_count: usize,
    work: u64,
    work_limit: u64,
    /// Memo ids from here on are refused (see `memoize`).
    max_memo_id: usize,
    replace_globals: bool,
    out: Lite,
}

/// Decodes `data`, keeping of every dict the values under `keys`; `None` if the stream is not
/// one this machine handles, or might be rejected by the generic path.
///
/// `replace_unresolved_globals` is the generic option of the same name: a class or function
/// reference stored in a container or left as the result becomes `None` instead of making the
/// stream fail.
pub fn decode(
    data: &[u8],
    keys: &'static [&'static str],
    replace_unresolved_globals: bool,
) -> Option<Lite> {
    if keys.len() >= usize::from(NO_KEY) {
        return None;
    }
    let m = Machine {
        memo_count: 0,
        work: 0,
        work_limit: work_limit(data.len()),
        max_memo_id: data.len(),
        replace_globals: replace_unresolved_globals,
        out: Lite {
            root: V::None,
            a: Arenas::take(),
            keys,
        },
    };
    run(data, m).ok()
}

/// The machine gave up on a stream: the caller takes the generic path, which words the error.
#[derive(Debug)]
struct Decline;

impl From<OpError> for Decline {
    #[inline]
    fn from(_: OpError) -> Decline {
        Decline
    }
}

impl<'a> Sink<'a> for Machine {
    type Output = Lite;
    type Error = Decline;

    /// The opcodes of a profile or decision file are decoded right here, each in one dispatch
    /// (`step` is inlined into every arm), with the argument the tokenizer would read; the
    /// rest (0 bytes used) go through the tokenizer to [`Machine::op`].
    #[inline(always)]
    fn direct(&mut self, data: &'a [u8]) -> Result<usize, Decline> {
        // A run of hot opcodes is taken in one call, up to the first other one.
        let mut done = 0;
        loop {
            let rest = data.get(done..).ok_or(Decline)?;
            let used = self.hot(rest)?;
            if used == 0 {
                return Ok(done);
            }
            done += used;
        }
    }

    fn op(&mut self, _offset: usize, op: Op<'a>, _raw: &'a [u8]) -> Result<(), Decline> {
        self.exec(op)
    }

    fn stop(mut self, _offset: usize) -> Result<Lite, Decline> {
        let root = self.pop().ok_or(Decline)?;
        let root = self.stored(root).ok_or(Decline)?;
        let (_, weight) = self.shape(root);
        self.charge(weight).ok_or(Decline)?;
        if self.work > self.work_limit {
            return Err(Decline);
        }
        self.out.root = root;
        Ok(self.out)
    }
}

impl Machine {
    /// One hot opcode at the start of `rest` (and what CPython writes right after it), decoded
    /// straight from the bytes: the bytes used, or 0 if `rest` starts with another opcode.
    #[inline(always)]
    fn hot(&mut self, rest: &[u8]) -> Result<usize, Decline> {
        Ok(match *rest {
            [b'h', id, ref after @ ..] => {
                self.exec(Op::Get(id.into()))?;
                // Mostly a dict key; its value follows. The common values are decoded here, in
                // branches of their own, which the CPU predicts better than the shared
                // dispatch (measured: ~10% faster on the golden profiles).
                2 + match *after {
                    [b'K', b, ..] => {
                        self.exec(Op::Int(b.into()))?;
                        2
                    }
                    [b'N', ..] => {
                        self.exec(Op::None)?;
                        1
                    }
                    [b'G', a, b, c, d, e, f, g, h, ..] => {
                        self.exec(Op::Float(f64::from_be_bytes([a, b, c, d, e, f, g, h])))?;
                        9
                    }
                    [b'J', a, b, c, d, ..] => {
                        self.exec(Op::Int(i32::from_le_bytes([a, b, c, d]).into()))?;
                        5
                    }
                    [b'h', id, ..] => {
                        self.exec(Op::Get(id.into()))?;
                        2
                    }
                    _ => 0,
                }
            }
            [b'K', b, ..] => {
                self.exec(Op::Int(b.into()))?;
                2
            }
            [b'M', a, b, ..] => {
                self.exec(Op::Int(u16::from_le_bytes([a, b]).into()))?;
                3
            }
            [b'J', ref after @ ..] => {
                let b: [u8; 4] = after
                    .get(..4)
                    .ok_or(Decline)?
                    .try_into()
                    .map_err(|_| Decline)?;
                self.exec(Op::Int(i32::from_le_bytes(b).into()))?;
                5
            }
            [b'G', ref after @ ..] => {
                let b: [u8; 8] = after
                    .get(..8)
                    .ok_or(Decline)?
                    .try_into()
                    .map_err(|_| Decline)?;
                self.exec(Op::Float(f64::from_be_bytes(b)))?;
                9
            }
            [0x8c, n, ref after @ ..] => {
                let n = usize::from(n);
                let text = after.get(..n).ok_or(Decline)?;
                self.exec(Op::Unicode(text))?;
                2 + n + self.memoize_next(&after[n..])?
            }
            [b'N', ..] => {
                self.exec(Op::None)?;
                1
            }
            [MEMOIZE, ..] => {
                self.exec(Op::Memoize)?;
                1
            }
            [b'(', ..] => {
                self.exec(Op::Mark)?;
                // A run of small ints (a module's input or output shape).
                let mut used = 1;
                loop {
                    match rest[used..] {
                        [b'K', b, ..] => {
                            self.exec(Op::Int(b.into()))?;
                            used += 2;
                        }
                        [b'M', a, b, ..] => {
                            self.exec(Op::Int(u16::from_le_bytes([a, b]).into()))?;
                            used += 3;
                        }
                        _ => break used,
                    }
                }
            }
            [b']', ref after @ ..] => {
                self.exec(Op::EmptyList)?;
                1 + self.memoize_next(after)?
            }
            [b'e', ..] => {
                self.exec(Op::Appends)?;
                1
            }
            [b'}', ref after @ ..] => {
                self.exec(Op::EmptyDict)?;
                1 + self.memoize_next(after)?
            }
            [b'u', ..] => {
                self.exec(Op::SetItems)?;
                1
            }
            [b')', ..] => {
                self.exec(Op::EmptyTuple)?;
                1
            }
            [0x81, ref after @ ..] => {
                self.exec(Op::NewObj)?;
                1 + self.memoize_next(after)?
            }
            [b'b', ..] => {
                self.exec(Op::Build)?;
                1
            }
            [0x86, ref after @ ..] => {
                self.exec(Op::TupleN(2))?;
                1 + self.memoize_next(after)?
            }
            _ => 0,
        })
    }
}

impl Machine {
    /// [`Machine::step`] for the [`Sink`]: `None` becomes [`Decline`].
    #[inline(always)]
    fn exec(&mut self, op: Op<'_>) -> Result<(), Decline> {
        self.step(op).ok_or(Decline)
    }

    /// CPython memoizes strings and containers right away: a `MEMOIZE` at the start of `rest`
    /// is taken here, saving a trip through the dispatch. The bytes used (0 or 1).
    #[inline(always)]
    fn memoize_next(&mut self, rest: &[u8]) -> Result<usize, Decline> {
        if rest.first() == Some(&MEMOIZE) {
            self.memoize(self.memo_count).ok_or(Decline)?;
            Ok(1)
        } else {
            Ok(0)
        }
    }

    #[inline(always)]
    fn step(&mut self, op: Op<'_>) -> Option<()> {
        match op {
            Op::Ignored | Op::Stop => {}
            Op::Mark => self.out.a.marks.push(self.out.a.stack.len()),
            Op::Memoize => self.memoize(self.memo_count)?,
            Op::Put(id) => self.memoize(usize::try_from(id).ok()?)?,
            Op::Get(id) => {
                let v = (*self.out.a.memo.get(usize::try_from(id).ok()?)?)?;
                if let Some(c) = self.cont_mut(v) {
                    c.shared = true;
                    let weight = c.weight;
                    self.charge(weight)?;
                } else {
                    self.charge(1)?;
                }
                self.out.a.stack.push(v);
            }
            Op::None => self.out.a.stack.push(V::None),
            Op::Bool(_) => self.out.a.stack.push(V::Other),
            Op::Int(i) => self.out.a.stack.push(V::Int(i)),
            Op::Float(x) => self.out.a.stack.push(V::Float(x)),
            Op::Unicode(s) => {
                let text = std::str::from_utf8(s).ok()?;
                let key = self
                    .out
                    .keys
                    .iter()
                    .position(|k| *k == text)
                    .map_or(NO_KEY, |k| k as u8);
                let a = &mut self.out.a;
                let id = u32::try_from(a.strs.len()).ok()?;
                let start = u32::try_from(a.text.len()).ok()?;
                let len = u32::try_from(text.len()).ok()?;
                a.text.push_str(text);
                a.strs.push(Text { start, len, key });
                self.out.a.stack.push(V::Str(id));
            }
            Op::Long(_) | Op::Bytes(_) | Op::BinString(_) => self.out.a.stack.push(V::Other),
            Op::EmptyTuple => {
                let t = self.new_cont(Cont::new(1, 1))?;
                self.out.a.stack.push(V::Tuple(t));
            }
            Op::TupleN(n) => {
                let at = self.out.a.stack.len().checked_sub(usize::from(n))?;
                self.tuple_from(at)?;
            }
            Op::Tuple => {
                let at = self.out.a.marks.pop()?;
                self.tuple_from(at)?;
            }
            Op::EmptyList => {
                let l = self.new_cont(Cont::new(1, 1))?;
                self.out.a.stack.push(V::List(l));
            }
            Op::Append => {
                let at = self.out.a.stack.len().checked_sub(1)?;
                self.extend_list(at)?;
            }
            Op::Appends => {
                let at = self.out.a.marks.pop()?;
                self.extend_list(at)?;
            }
            Op::EmptyDict => {
                let mut c = Cont::new(1, 1);
                let nkeys = self.out.keys.len();
                let fields = &mut self.out.a.fields;
                c.first = u32::try_from(fields.len() / nkeys.max(1)).ok()?;
                fields.resize(fields.len() + nkeys, None);
                let d = self.new_cont(c)?;
                self.out.a.stack.push(V::Dict(d));
            }
            Op::SetItem => {
                let at = self.out.a.stack.len().checked_sub(2)?;
                self.extend_dict(at)?;
            }
            Op::SetItems => {
                let at = self.out.a.marks.pop()?;
                self.extend_dict(at)?;
            }
            Op::Global(module, name) => self.out.a.stack.push(global(module, name)),
            Op::StackGlobal => {
                let V::Str(name) = self.pop()? else {
                    return None;
                };
                let V::Str(module) = self.pop()? else {
                    return None;
                };
                // Both names may be memo references, each resolved once.
                self.charge(2)?;
                let name = self.out.str(name)?;
                let module = self.out.str(module)?;
                self.out
                    .a
                    .stack
                    .push(global(module.as_bytes(), name.as_bytes()));
            }
            Op::Reduce => {
                // Only a callable the generic decoder gives no meaning to: the result is the
                // argument tuple itself (sharing its elements; tuples never change).
                let args = self.pop()?;
                let callable = self.pop()?;
                let (V::Tuple(t), V::Global) = (args, callable) else {
                    return None;
                };
                let mut c = *self.out.a.conts.get(t as usize)?;
                // As pre-flight counts it: one level and one value more than the arguments.
                let depth = c.depth.checked_add(1).filter(|&d| d <= MAX_DEPTH)?;
                self.charge(c.weight.saturating_mul(2).saturating_add(1))?;
                c.depth = depth;
                c.weight = c.weight.saturating_add(1);
                c.shared = false;
                c.memoized = false;
                let r = self.new_cont(c)?;
                self.out.a.stack.push(V::Tuple(r));
            }
            Op::NewObj => {
                // The argument tuple stands in for the object until BUILD replaces it.
                let args = self.pop()?;
                self.pop()?;
                self.out.a.stack.push(args);
            }
            Op::Build => {
                // The state replaces the stand-in.
                let state = self.pop()?;
                self.pop()?;
                self.out.a.stack.push(state);
            }
            _ => return None,
        }
        Some(())
    }

    /// The stack position of the innermost mark (0 without one).
    #[inline]
    fn base(&self) -> usize {
        self.out.a.marks.last().copied().unwrap_or(0)
    }

    /// Pops the top item, never reaching below the innermost mark (as the real machine).
    #[inline]
    fn pop(&mut self) -> Option<V> {
        if self.out.a.stack.len() <= self.base() {
            return None;
        }
        self.out.a.stack.pop()
    }

    #[inline]
    fn charge(&mut self, weight: u64) -> Option<()> {
        // Checked against the limit at the end: the count only grows, and this machine
        // shares containers instead of copying them, so it cannot blow up on the way.
        self.work = self.work.saturating_add(weight);
        Some(())
    }

    fn new_cont(&mut self, c: Cont) -> Option<u32> {
        let id = u32::try_from(self.out.a.conts.len()).ok()?;
        self.out.a.conts.push(c);
        Some(id)
    }

    #[inline]
    fn cont_mut(&mut self, v: V) -> Option<&mut Cont> {
        match v {
            V::Tuple(c) | V::List(c) | V::Dict(c) => self.out.a.conts.get_mut(c as usize),
            _ => None,
        }
    }

    /// Depth and weight of a value, as pre-flight counts them.
    #[inline]
    fn shape(&self, v: V) -> (u32, u64) {
        match v {
            V::Tuple(c) | V::List(c) | V::Dict(c) => self
                .out
                .a
                .conts
                .get(c as usize)
                .map_or((1, 1), |c| (c.depth, c.weight)),
            _ => (1, 1),
        }
    }

    /// A value about to be stored in a container (or returned): class and function
    /// references fail the generic conversion, or become `None` if the caller asked so.
    #[inline]
    fn stored(&self, v: V) -> Option<V> {
        match v {
            V::Global | V::KnownGlobal if self.replace_globals => Some(V::None),
            V::Global | V::KnownGlobal => None,
            v => Some(v),
        }
    }

    fn memoize(&mut self, id: usize) -> Option<()> {
        if self.out.a.stack.len() <= self.base() {
            return None;
        }
        let top = *self.out.a.stack.last()?;
        if let Some(c) = self.cont_mut(top) {
            if c.memoized {
                return None;
            }
            c.memoized = true;
        } else {
            // Pre-flight charges re-memoizing a memo reference; a scalar weighs 1.
            self.charge(1)?;
        }
        let memo = &mut self.out.a.memo;
        if id == memo.len() {
            // The usual case: ids in order.
            memo.push(Some(top));
        } else {
            // Ids are dense in what CPython writes, so below the number of opcodes: refuse
            // others rather than allocate (memory stays linear in the input).
            if id >= self.max_memo_id {
                return None;
            }
            if id >= memo.len() {
                memo.resize(id + 1, None);
            }
            if memo[id].is_some() {
                // A re-used id: CPython never writes one.
                return None;
            }
            memo[id] = Some(top);
        }
        self.memo_count += 1;
        Some(())
    }

    /// Moves the items at `stack[at..]` to the end of the element arena.
    #[inline]
    fn move_items(&mut self, at: usize) -> Option<Moved> {
        let a = &mut self.out.a;
        let items = a.stack.get(at..)?;
        let mut m = Moved {
            start: u32::try_from(a.items.len()).ok()?,
            len: u32::try_from(items.len()).ok()?,
            all_dicts: true,
            depth: 0,
            weight: 0,
        };
        a.items.reserve(items.len());
        for &v in items {
            let (depth, weight) = match v {
                V::Tuple(c) | V::List(c) | V::Dict(c) => {
                    let c = a.conts.get(c as usize)?;
                    (c.depth, c.weight)
                }
                _ => (1, 1),
            };
            m.depth = m.depth.max(depth);
            m.weight = m.weight.saturating_add(weight);
            m.all_dicts &= matches!(v, V::Dict(_));
            let v = match v {
                V::Global | V::KnownGlobal if self.replace_globals => V::None,
                V::Global | V::KnownGlobal => return None,
                v => v,
            };
            a.items.push(v);
        }
        a.stack.truncate(at);
        Some(m)
    }

    /// Appends the items moved by `m` to list `c` (not shared).
    fn append_items(&mut self, c: u32, m: &Moved) -> Option<()> {
        let (start, len) = (m.start, m.len);
        let cont = *self.out.a.conts.get(c as usize)?;
        let merged = match self.out.a.chunks.get_mut(cont.last as usize) {
            Some(last) if last.start.checked_add(last.len) == Some(start) => {
                last.len = last.len.checked_add(len)?;
                true
            }
            _ => false,
        };
        if !merged {
            let chunk = u32::try_from(self.out.a.chunks.len()).ok()?;
            self.out.a.chunks.push(Chunk {
                start,
                len,
                next: NIL,
            });
            if let Some(last) = self.out.a.chunks.get_mut(cont.last as usize) {
                last.next = chunk;
            }
            let cont = self.out.a.conts.get_mut(c as usize)?;
            if cont.first == NIL {
                cont.first = chunk;
            }
            cont.last = chunk;
        }
        let cont = self.out.a.conts.get_mut(c as usize)?;
        cont.len = cont.len.checked_add(len)?;
        cont.all_dicts &= m.all_dicts;
        Some(())
    }

    /// `TUPLE`, `TUPLE1..3`: the items at `stack[at..]` (all above the innermost mark).
    fn tuple_from(&mut self, at: usize) -> Option<()> {
        if at < self.base() {
            return None;
        }
        let m = self.move_items(at)?;
        let depth = m.depth.checked_add(1).filter(|&d| d <= MAX_DEPTH)?;
        let mut c = Cont::new(depth, m.weight.saturating_add(1));
        c.flat = true;
        c.first = m.start;
        c.len = m.len;
        let t = self.new_cont(c)?;
        self.out.a.stack.push(V::Tuple(t));
        Some(())
    }

    /// The container just below `stack[at]`, which is to take in the items above it
    /// (`APPEND(S)`, `SETITEM(S)`): above the innermost mark, of the given kind, not shared.
    #[inline]
    fn target(&self, at: usize, dict: bool) -> Option<u32> {
        if at <= self.base() {
            return None;
        }
        let c = match (*self.out.a.stack.get(at - 1)?, dict) {
            (V::List(c), false) | (V::Dict(c), true) => c,
            _ => return None,
        };
        if self.out.a.conts.get(c as usize)?.shared {
            return None;
        }
        Some(c)
    }

    /// Container `c` took in items of this (deepest) depth and (total) weight; checks the
    /// depth limit.
    #[inline]
    fn grown(&mut self, c: u32, depth: u32, weight: u64) -> Option<()> {
        let cont = self.out.a.conts.get_mut(c as usize)?;
        cont.depth = cont.depth.max(depth.checked_add(1)?);
        if cont.depth > MAX_DEPTH {
            return None;
        }
        cont.weight = cont.weight.saturating_add(weight);
        Some(())
    }

    fn extend_list(&mut self, at: usize) -> Option<()> {
        let c = self.target(at, false)?;
        if at >= self.out.a.stack.len() {
            return Some(());
        }
        let m = self.move_items(at)?;
        self.grown(c, m.depth, m.weight)?;
        self.append_items(c, &m)
    }

    fn extend_dict(&mut self, at: usize) -> Option<()> {
        let c = self.target(at, true)?;
        let nkeys = self.out.keys.len();
        let a = &mut self.out.a;
        let items = a.stack.get(at..)?;
        if items.is_empty() {
            return Some(());
        }
        if items.len() % 2 != 0 {
            return None;
        }
        let row = a.conts.get(c as usize)?.first as usize * nkeys;
        let (mut depth, mut weight) = (1u32, 0u64);
        for pair in items.chunks_exact(2) {
            let V::Str(key) = pair[0] else {
                return None;
            };
            let value = match pair[1] {
                V::Global | V::KnownGlobal if self.replace_globals => V::None,
                V::Global | V::KnownGlobal => return None,
                v => v,
            };
            let (d, w) = match value {
                V::Tuple(v) | V::List(v) | V::Dict(v) => {
                    let v = a.conts.get(v as usize)?;
                    (v.depth, v.weight)
                }
                _ => (1, 1),
            };
            depth = depth.max(d);
            weight = weight.saturating_add(w).saturating_add(1);
            let slot = a.strs.get(key as usize)?.key;
            if slot != NO_KEY {
                *a.fields.get_mut(row + usize::from(slot))? = Some(value);
            }
        }
        self.out.a.stack.truncate(at);
        self.grown(c, depth, weight)
    }
}

/// A `GLOBAL` / `STACK_GLOBAL` reference.
fn global(module: &[u8], name: &[u8]) -> V {
    match classify_global(module, name) {
        Global::Other => V::Global,
        _ => V::KnownGlobal,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_pickle::Value;

    use super::*;
    use crate::decoder::{self, DecodeOptions};

    const KEYS: &[&str] = &["a", "b"];

    #[test]
    fn keeps_the_last_value_of_each_key_and_list_elements() {
        // pickle.dumps({"a": 1, "b": [2.5, "x"], "c": None, "a": 3}) by hand (protocol 4)
        let p = b"\x80\x04}\x94(\x8c\x01a\x94K\x01\x8c\x01b]\x94(G@\x04\x00\x00\x00\x00\x00\x00\x8c\x01xe\x8c\x01cNh\x01K\x03u.";
        let lite = decode(p, KEYS, false).expect("handled");
        let V::Dict(d) = lite.root() else {
            panic!("a dict")
        };
        assert_eq!(lite.field(d, 0), Some(V::Int(3)));
        let Some(V::List(l)) = lite.field(d, 1) else {
            panic!("a list")
        };
        let items: Vec<V> = lite.elements(l).collect();
        assert_eq!(items[0], V::Float(2.5));
        let V::Str(x) = items[1] else { panic!("a str") };
        assert_eq!(lite.str(x), Some("x"));
        assert_eq!(lite.elements(l).len(), 2);
    }

    #[test]
    fn declines_what_it_does_not_handle_or_the_generic_path_rejects() {
        // a = []; a.append(a)
        assert!(decode(b"\x80\x04]\x94h\x00a.", KEYS, false).is_none());
        // a global left in the result, unless replaced
        assert!(decode(b"cnumpy\nndarray\n.", KEYS, false).is_none());
        assert_eq!(
            decode(b"cnumpy\nndarray\n.", KEYS, true).map(|l| l.root()),
            Some(V::None)
        );
        // text opcodes, trailing bytes, an int dict key, a missing STOP
        assert!(decode(b"I1\n.", KEYS, false).is_none());
        assert!(decode(b"N.x", KEYS, false).is_none());
        assert!(decode(b"}K\x01Ns.", KEYS, false).is_none());
        assert!(decode(b"\x80\x04]", KEYS, false).is_none());
    }

    #[test]
    fn values_are_16_bytes() {
        assert_eq!(size_of::<V>(), 16);
        assert_eq!(size_of::<Option<V>>(), 16);
    }

    #[test]
    fn memo_ids_beyond_the_input_are_refused_without_allocating() {
        // N, then LONG_BINPUT with ids 2^16, 2^17, ...: each would grow the memo table.
        let mut p = b"\x80\x04N".to_vec();
        for k in 0..4000u32 {
            p.push(b'r');
            p.extend_from_slice(&((k + 1) << 16).to_le_bytes());
        }
        p.push(b'.');
        assert!(decode(&p, KEYS, false).is_none());
        // Dense ids are fine.
        assert!(decode(b"\x80\x04Nr\x00\x00\x00\x00.", KEYS, false).is_some());
    }

    /// Where the light machine accepts `p`, the generic decoder accepts it too and decodes the
    /// same values.
    fn check_agrees(p: &[u8], keys: &'static [&'static str]) -> Result<(), TestCaseError> {
        for replace in [false, true] {
            if let Some(l) = decode(p, keys, replace) {
                let options = DecodeOptions {
                    replace_unresolved_globals: replace,
                };
                let generic = decoder::decode(p, options);
                prop_assert!(generic.is_ok(), "generic path rejects {p:?}: {generic:?}");
                let value = generic.unwrap_or(Value::None);
                prop_assert!(l.agrees(l.root(), &value), "{p:?}: {value:?}");
            }
        }
        Ok(())
    }

    fn golden_samples() -> &'static [(Vec<u8>, &'static [&'static str])] {
        static FILES: std::sync::OnceLock<Vec<(Vec<u8>, &'static [&'static str])>> =
            std::sync::OnceLock::new();
        FILES.get_or_init(|| {
            let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
            let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../apparate/tests/fixtures/pickles");
            const PROFILE: &[&str] = &["name", "children", "fwd_latency"];
            const DECISIONS: &[&str] = &["batching_decision", "per_request_stats", "avg_qps"];
            [
                (golden.join("cv-vgg16-oxford/data/profile_pickles_bs/vgg16_2_earlyexit_profile.pickle"), PROFILE),
                (fixtures.join("profile_p2/resnet8_2_earlyexit_profile.pickle"), PROFILE),
                (fixtures.join("decisions_azure_numpy.pickle"), DECISIONS),
                (golden.join("nlp-distilbert-base-imdb/data/batch_decisions/distilbert-base_azure.pickle"), DECISIONS),
            ]
            .into_iter()
            .map(|(p, keys)| (std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())), keys))
            .collect()
        })
    }

    #[test]
    fn golden_files_decode_as_on_the_generic_path() {
        for (bytes, keys) in golden_samples() {
            prop_assert_eq_ok(check_agrees(bytes, keys));
            assert!(decode(bytes, keys, false).is_some() || decode(bytes, keys, true).is_some());
        }
    }

    fn prop_assert_eq_ok(r: Result<(), TestCaseError>) {
        if let Err(e) = r {
            panic!("{e}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Random opcode streams (the generic decoder's generator): never a panic, and
        /// whatever the light machine accepts decodes the same on the generic path.
        #[test]
        fn random_streams_agree_with_the_generic_decoder(
            choices in prop::collection::vec(any::<u8>(), 0..60),
        ) {
            let p = decoder::tests::program(&choices);
            check_agrees(&p, &["x"])?;
        }
    }

    proptest! {
        /// Corrupted profile and decision files: the same.
        #[test]
        fn corrupted_files_agree_with_the_generic_decoder(
            which in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let (bytes, keys) = which.get(golden_samples());
            let mut bytes = bytes.clone();
            for (at, b) in flips {
                let len = bytes.len();
                bytes[at % len] = b;
            }
            check_agrees(&bytes, keys)?;
        }
    }
}
