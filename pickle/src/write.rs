//! A small pickle writer (protocol 4) that emits what CPython's C pickler emits for the
//! objects the artifact's files hold.
//!
//! Two layers:
//!
//! * [`Pickler`]: opcodes on a [`Write`] sink, with CPython's framing (a `FRAME` is closed at
//!   the first object boundary once it holds 64 KiB) and its memo (`MEMOIZE` after every str,
//!   list, dict, non-empty tuple, global and instance; `BINGET` / `LONG_BINGET` for repeats).
//!   Streaming writers (the 100 MB sample pickles) drive it directly.
//! * [`PyValue`]: a small Python object model (None, bool, int, float, str, bytes, list,
//!   tuple, dict, class instances, `numpy.float64`, shared objects) and [`PyValue::dump`], which
//!   pickles a value the way `pickle.dump(value, f, protocol=4)` does.
//!
//! One difference, never met in the artifact's files: CPython writes a str or bytes of 64 KiB
//! or more outside the frames; here it stays inside one (still a valid pickle).
//!
//! Strings are memoized by value: CPython memoizes by identity, so where Python would have held
//! two equal but distinct `str` objects we emit a `BINGET` where it would have emitted a second
//! copy. Both load to equal values; loading and re-dumping our output in CPython reproduces our
//! bytes exactly (the tests check this).

use std::collections::HashMap;
use std::io::Write;

/// Largest frame CPython lets grow before closing it at the next object boundary.
const FRAME_SIZE_TARGET: usize = 64 * 1024;
/// Frames shorter than this get no `FRAME` header.
const FRAME_SIZE_MIN: usize = 4;
/// Items per `APPENDS` / `SETITEMS` batch.
const BATCH_SIZE: usize = 1000;

/// Protocol-4 opcodes used here.
mod op {
    pub const PROTO: u8 = 0x80;
    pub const FRAME: u8 = 0x95;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const MEMOIZE: u8 = 0x94;
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE: u8 = b'X';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const BINBYTES: u8 = b'B';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const TUPLE: u8 = b't';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const NEWOBJ: u8 = 0x81;
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
}

/// A memo entry of an object that is not a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum MemoKey {
    /// A global (`module`, `name`).
    Global(String, String),
    /// A [`PyValue::Shared`] object.
    Shared(u32),
    /// The `numpy.dtype('float64')` object.
    DtypeF8,
}

/// Writes protocol-4 opcodes to `W`, framed and memoized as CPython does.
///
/// Call [`Pickler::start`], then one `save_*` for the top-level object (containers take a
/// closure that saves their items), then [`Pickler::finish`]. Every `save_*` first checks the
/// frame boundary, as CPython's `save()` does.
pub struct Pickler<W: Write> {
    out: W,
    /// The open frame's content (everything after `PROTO` goes through frames).
    frame: Vec<u8>,
    /// Memo ids of strings (by value) and other shared objects.
    strings: HashMap<String, u32>,
    objects: HashMap<MemoKey, u32>,
    /// Next memo id (`MEMOIZE` assigns ids in order).
    memo_len: u32,
}

impl<W: Write> Pickler<W> {
    /// A pickler writing to `out`; writes the `PROTO 4` header.
    pub fn start(mut out: W) -> std::io::Result<Pickler<W>> {
        out.write_all(&[op::PROTO, 4])?;
        Ok(Pickler {
            out,
            frame: Vec::with_capacity(FRAME_SIZE_TARGET + 1024),
            strings: HashMap::new(),
            objects: HashMap::new(),
            memo_len: 0,
        })
    }

    /// Writes `STOP`, closes the last frame and returns the sink (not flushed).
    pub fn finish(mut self) -> std::io::Result<W> {
        self.frame.push(op::STOP);
        self.commit_frame()?;
        Ok(self.out)
    }

    /// CPython's `_Pickler_OpcodeBoundary`, called at the start of every object: closes the
    /// frame once it holds at least 64 KiB.
    fn boundary(&mut self) -> std::io::Result<()> {
        if self.frame.len() >= FRAME_SIZE_TARGET {
            self.commit_frame()?;
        }
        Ok(())
    }

    fn commit_frame(&mut self) -> std::io::Result<()> {
        if self.frame.len() >= FRAME_SIZE_MIN {
            let mut header = [0u8; 9];
            header[0] = op::FRAME;
            header[1..].copy_from_slice(&(self.frame.len() as u64).to_le_bytes());
            self.out.write_all(&header)?;
        }
        self.out.write_all(&self.frame)?;
        self.frame.clear();
        Ok(())
    }

    fn byte(&mut self, b: u8) {
        self.frame.push(b);
    }

    /// `MEMOIZE`: the stack top gets the next memo id, which is returned.
    fn memoize(&mut self) -> u32 {
        self.byte(op::MEMOIZE);
        let id = self.memo_len;
        self.memo_len += 1;
        id
    }

    /// `BINGET` / `LONG_BINGET`.
    fn get(&mut self, id: u32) {
        if id < 256 {
            self.frame.extend_from_slice(&[op::BINGET, id as u8]);
        } else {
            self.byte(op::LONG_BINGET);
            self.frame.extend_from_slice(&id.to_le_bytes());
        }
    }

    /// `MARK`.
    fn mark(&mut self) {
        self.byte(op::MARK);
    }

    /// `None`.
    pub fn save_none(&mut self) -> std::io::Result<()> {
        self.boundary()?;
        self.byte(op::NONE);
        Ok(())
    }

    /// A Python `bool`.
    pub fn save_bool(&mut self, b: bool) -> std::io::Result<()> {
        self.boundary()?;
        self.byte(if b { op::NEWTRUE } else { op::NEWFALSE });
        Ok(())
    }

    /// A Python `int`: `BININT1` / `BININT2` / `BININT` when it fits, else `LONG1`.
    pub fn save_int(&mut self, x: i64) -> std::io::Result<()> {
        self.boundary()?;
        if (0..=0xff).contains(&x) {
            self.frame.extend_from_slice(&[op::BININT1, x as u8]);
        } else if (0..=0xffff).contains(&x) {
            self.byte(op::BININT2);
            self.frame.extend_from_slice(&(x as u16).to_le_bytes());
        } else if (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&x) {
            self.byte(op::BININT);
            self.frame.extend_from_slice(&(x as i32).to_le_bytes());
        } else {
            // pickle.encode_long: (abs(x).bit_length() >> 3) + 1 little-endian two's
            // complement bytes, less a redundant 0xff sign byte.
            let bits = 64 - x.unsigned_abs().leading_zeros();
            let mut n = (bits >> 3) as usize + 1;
            let mut ext = [if x < 0 { 0xff } else { 0 }; 9];
            ext[..8].copy_from_slice(&x.to_le_bytes());
            if x < 0 && n > 1 && ext[n - 1] == 0xff && ext[n - 2] & 0x80 != 0 {
                n -= 1;
            }
            self.frame.extend_from_slice(&[op::LONG1, n as u8]);
            self.frame.extend_from_slice(&ext[..n]);
        }
        Ok(())
    }

    /// A Python `float` (`BINFLOAT`, big-endian).
    pub fn save_float(&mut self, x: f64) -> std::io::Result<()> {
        self.boundary()?;
        self.byte(op::BINFLOAT);
        self.frame.extend_from_slice(&x.to_be_bytes());
        Ok(())
    }

    /// A `str`, memoized by value.
    pub fn save_str(&mut self, s: &str) -> std::io::Result<()> {
        self.boundary()?;
        if let Some(&id) = self.strings.get(s) {
            self.get(id);
            return Ok(());
        }
        let bytes = s.as_bytes();
        if bytes.len() < 256 {
            self.frame
                .extend_from_slice(&[op::SHORT_BINUNICODE, bytes.len() as u8]);
        } else {
            self.byte(op::BINUNICODE);
            self.frame
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        self.frame.extend_from_slice(bytes);
        let id = self.memoize();
        self.strings.insert(s.to_owned(), id);
        Ok(())
    }

    /// A `bytes` object (not shared, so memoized but never looked up).
    pub fn save_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.boundary()?;
        if b.len() < 256 {
            self.frame
                .extend_from_slice(&[op::SHORT_BINBYTES, b.len() as u8]);
        } else {
            self.byte(op::BINBYTES);
            self.frame
                .extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.frame.extend_from_slice(b);
        self.memoize();
        Ok(())
    }

    /// A list of `n` items, each written by `item(self, i)` (which must save exactly one
    /// object): `EMPTY_LIST`, `MEMOIZE`, then `APPEND` for a single item or
    /// `MARK ... APPENDS` batches of 1000, as CPython's `batch_list_exact`.
    pub fn save_list_with(
        &mut self,
        n: usize,
        mut item: impl FnMut(&mut Self, usize) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.boundary()?;
        self.byte(op::EMPTY_LIST);
        self.memoize();
        if n == 1 {
            item(self, 0)?;
            self.byte(op::APPEND);
            return Ok(());
        }
        let mut i = 0;
        while i < n {
            self.mark();
            let end = (i + BATCH_SIZE).min(n);
            while i < end {
                item(self, i)?;
                i += 1;
            }
            self.byte(op::APPENDS);
        }
        Ok(())
    }

    /// A dict of `n` items, each written by `item(self, i)` (key then value): `EMPTY_DICT`,
    /// `MEMOIZE`, then `SETITEM` for a single item or `MARK ... SETITEMS` batches of 1000, as
    /// CPython's `batch_dict_exact`.
    pub fn save_dict_with(
        &mut self,
        n: usize,
        mut item: impl FnMut(&mut Self, usize) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.boundary()?;
        self.byte(op::EMPTY_DICT);
        self.memoize();
        if n == 0 {
            return Ok(());
        }
        if n == 1 {
            item(self, 0)?;
            self.byte(op::SETITEM);
            return Ok(());
        }
        // CPython's batch_dict_exact loops while the last batch was full, so a dict of a
        // multiple of 1000 items ends with an empty `MARK SETITEMS`.
        let mut i = 0;
        loop {
            self.mark();
            let mut in_batch = 0;
            while i < n && in_batch < BATCH_SIZE {
                item(self, i)?;
                i += 1;
                in_batch += 1;
            }
            self.byte(op::SETITEMS);
            if in_batch < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    /// A tuple of `n` items, each written by `item(self, i)`: `EMPTY_TUPLE` (not memoized),
    /// `TUPLE1..3`, or `MARK ... TUPLE`, then `MEMOIZE`.
    pub fn save_tuple_with(
        &mut self,
        n: usize,
        mut item: impl FnMut(&mut Self, usize) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.boundary()?;
        if n == 0 {
            self.byte(op::EMPTY_TUPLE);
            return Ok(());
        }
        if n > 3 {
            self.mark();
        }
        for i in 0..n {
            item(self, i)?;
        }
        self.byte(match n {
            1 => op::TUPLE1,
            2 => op::TUPLE2,
            3 => op::TUPLE3,
            _ => op::TUPLE,
        });
        self.memoize();
        Ok(())
    }

    /// A global (`module.name`): `STACK_GLOBAL` the first time, `BINGET` afterwards.
    pub fn save_global(&mut self, module: &str, name: &str) -> std::io::Result<()> {
        self.boundary()?;
        let key = MemoKey::Global(module.to_owned(), name.to_owned());
        if let Some(&id) = self.objects.get(&key) {
            self.get(id);
            return Ok(());
        }
        self.save_str(module)?;
        self.save_str(name)?;
        self.byte(op::STACK_GLOBAL);
        let id = self.memoize();
        self.objects.insert(key, id);
        Ok(())
    }

    /// An instance of `module.class` with `__dict__` written by `state` (one object, normally
    /// a dict), as `copyreg.__reduce_ex__(4)` pickles plain class instances: the class,
    /// `EMPTY_TUPLE`, `NEWOBJ`, `MEMOIZE`, the state, `BUILD`.
    pub fn save_instance(
        &mut self,
        module: &str,
        class: &str,
        state: impl FnOnce(&mut Self) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.boundary()?;
        self.save_global(module, class)?;
        self.save_tuple_with(0, |_, _| Ok(()))?;
        self.byte(op::NEWOBJ);
        self.memoize();
        state(self)?;
        self.byte(op::BUILD);
        Ok(())
    }

    /// A `numpy.float64` scalar as numpy 1.x pickles it:
    /// `numpy.core.multiarray.scalar(numpy.dtype('f8', False, True), <8 raw little-endian bytes>)`,
    /// the dtype built with its state `(3, '<', None, None, None, -1, -1, 0)`.
    pub fn save_numpy_f64(&mut self, x: f64) -> std::io::Result<()> {
        self.boundary()?;
        self.save_global("numpy.core.multiarray", "scalar")?;
        self.save_tuple_with(2, |p, i| match i {
            0 => p.save_dtype_f8(),
            _ => p.save_bytes(&x.to_le_bytes()),
        })?;
        self.byte(op::REDUCE);
        self.memoize();
        Ok(())
    }

    /// `numpy.dtype('float64')`: a `REDUCE` of `numpy.dtype` on `('f8', False, True)`, then
    /// `BUILD` with its state; `BINGET` when written before.
    fn save_dtype_f8(&mut self) -> std::io::Result<()> {
        self.boundary()?;
        if let Some(&id) = self.objects.get(&MemoKey::DtypeF8) {
            self.get(id);
            return Ok(());
        }
        self.save_global("numpy", "dtype")?;
        self.save_tuple_with(3, |p, i| match i {
            0 => p.save_str("f8"),
            1 => p.save_bool(false),
            _ => p.save_bool(true),
        })?;
        self.byte(op::REDUCE);
        let id = self.memoize();
        self.objects.insert(MemoKey::DtypeF8, id);
        self.save_tuple_with(8, |p, i| match i {
            0 => p.save_int(3),
            1 => p.save_str("<"),
            2..=4 => p.save_none(),
            5 | 6 => p.save_int(-1),
            _ => p.save_int(0),
        })?;
        self.byte(op::BUILD);
        Ok(())
    }

    /// Saves a [`PyValue`].
    pub fn save(&mut self, value: &PyValue) -> std::io::Result<()> {
        match value {
            PyValue::None => self.save_none(),
            PyValue::Bool(b) => self.save_bool(*b),
            PyValue::Int(x) => self.save_int(*x),
            PyValue::Float(x) => self.save_float(*x),
            PyValue::Str(s) => self.save_str(s),
            PyValue::Bytes(b) => self.save_bytes(b),
            PyValue::List(items) => self.save_list_with(items.len(), |p, i| p.save(&items[i])),
            PyValue::Tuple(items) => self.save_tuple_with(items.len(), |p, i| p.save(&items[i])),
            PyValue::Dict(items) => self.save_dict_with(items.len(), |p, i| {
                p.save(&items[i].0)?;
                p.save(&items[i].1)
            }),
            PyValue::Object {
                module,
                class,
                state,
            } => self.save_instance(module, class, |p| p.save(state)),
            PyValue::NumpyFloat64(x) => self.save_numpy_f64(*x),
            PyValue::Shared { id, value } => {
                let key = MemoKey::Shared(*id);
                if let Some(&memo) = self.objects.get(&key) {
                    self.boundary()?;
                    self.get(memo);
                    return Ok(());
                }
                // A list's or dict's own MEMOIZE is the first one it writes.
                let memo = self.memo_len;
                self.save(value)?;
                if matches!(**value, PyValue::List(_) | PyValue::Dict(_)) {
                    self.objects.insert(key, memo);
                }
                Ok(())
            }
        }
    }
}

/// A Python value, as far as the artifact's files need.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` (all ints in the artifact's files fit 64 bits).
    Int(i64),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<PyValue>),
    /// `tuple`.
    Tuple(Vec<PyValue>),
    /// `dict`, in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// An instance of `module.class` whose `__dict__` is `state` (a [`PyValue::Dict`]).
    Object {
        /// Module, e.g. `profiler`.
        module: String,
        /// Class, e.g. `Profile`.
        class: String,
        /// The instance `__dict__`.
        state: Box<PyValue>,
    },
    /// A `numpy.float64` scalar.
    NumpyFloat64(f64),
    /// One Python object referenced from several places: every [`PyValue::Shared`] with the
    /// same `id` in one pickle is the same object (written once, then `BINGET`); only the first
    /// occurrence's `value` is written. Only lists and dicts can be shared: any other `value`
    /// is written again at every occurrence.
    Shared {
        /// Identity of the object within the pickle.
        id: u32,
        /// The object.
        value: Box<PyValue>,
    },
}

impl PyValue {
    /// `pickle.dumps(self, protocol=4)`.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.dump_to(&mut out);
        out
    }

    /// `pickle.dump(self, out, protocol=4)`.
    pub fn dump_to<W: Write>(&self, out: W) -> std::io::Result<W> {
        let mut p = Pickler::start(out)?;
        p.save(self)?;
        p.finish()
    }

    /// A `str`.
    pub fn str(s: impl Into<String>) -> PyValue {
        PyValue::Str(s.into())
    }

    /// A `dict` with `str` keys, in the given order.
    pub fn str_dict(items: Vec<(&str, PyValue)>) -> PyValue {
        PyValue::Dict(
            items
                .into_iter()
                .map(|(k, v)| (PyValue::str(k), v))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(v: &PyValue) -> String {
        v.dump().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Expected bytes: `pickle.dumps(x, 4).hex()` in CPython 3.11.
    #[test]
    fn ints_are_encoded_as_cpython_does() {
        for (x, want) in [
            (0, "80044b002e"),
            (255, "80044bff2e"),
            (256, "80049504000000000000004d00012e"),
            (65536, "80049506000000000000004a000001002e"),
            (-1, "80049506000000000000004affffffff2e"),
            (-2_147_483_648, "80049506000000000000004a000000802e"),
            (2_147_483_648, "80049508000000000000008a0500000080002e"),
            (-2_147_483_649, "80049508000000000000008a05ffffff7fff2e"),
            (i64::MAX, "8004950b000000000000008a08ffffffffffffff7f2e"),
            (i64::MIN, "8004950b000000000000008a0800000000000000802e"),
            (86_799_111_196, "80049508000000000000008a051c54a135142e"),
        ] {
            assert_eq!(hex(&PyValue::Int(x)), want, "{x}");
        }
    }

    #[test]
    fn containers_are_batched_and_memoized_as_cpython_does() {
        assert_eq!(hex(&PyValue::Dict(vec![])), "80047d942e");
        assert_eq!(hex(&PyValue::List(vec![])), "80045d942e");
        assert_eq!(
            hex(&PyValue::List(vec![PyValue::Int(1)])),
            "80049506000000000000005d944b01612e"
        );
        let four = PyValue::Tuple((1..=4).map(PyValue::Int).collect());
        assert_eq!(hex(&four), "8004950c00000000000000284b014b024b034b0474942e");
        // Equal strings are one memo entry.
        let aa = PyValue::Tuple(vec![PyValue::str("a"), PyValue::str("a")]);
        assert_eq!(hex(&aa), "80049509000000000000008c016194680086942e");
        // A dict of exactly 1000 items ends with an empty `MARK SETITEMS` batch.
        let dict = PyValue::Dict(
            (0..1000)
                .map(|i| (PyValue::Int(i), PyValue::None))
                .collect(),
        );
        let bytes = dict.dump();
        assert_eq!(
            bytes[bytes.len() - 8..],
            [0x4d, 0xe7, 0x03, 0x4e, 0x75, 0x28, 0x75, 0x2e]
        );
    }

    #[test]
    fn shared_lists_are_written_once_then_fetched_from_the_memo() {
        let shared = PyValue::Shared {
            id: 7,
            value: Box::new(PyValue::List(vec![])),
        };
        let v = PyValue::List(vec![shared.clone(), shared]);
        // `pickle.dumps([x, x], 4)` with `x = []`: EMPTY_LIST MEMOIZE MARK EMPTY_LIST MEMOIZE
        // BINGET 1 APPENDS STOP.
        assert_eq!(hex(&v), "80049509000000000000005d94285d946801652e");
    }
}
