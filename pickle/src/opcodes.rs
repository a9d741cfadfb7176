//! A tokenizer for the pickle opcodes that `serde-pickle` 1.2.0 understands.
//!
//! It borrows every argument from the input slice and never allocates, so both the pre-flight
//! check ([`crate::preflight`]) and the fast sample decoder (`apparate::artifact`'s
//! `ramp_stream`) can walk a 100 MB stream cheaply. Opcodes `serde-pickle` rejects (persistent
//! ids, extension registry, out-of-band buffers) are reported as unknown here too.
//!
//! [`run`] is the one opcode loop: it walks a stream, hands every opcode to a [`Sink`] (the
//! pre-flight check, the full decoder, [`crate::lite`], `ramp_stream`), and applies the stream-level rules (a
//! stream ends with `STOP`, nothing follows it, errors carry the opcode's offset) in one place.

pub use crate::error::OpError;
use crate::error::PickleProblem;

/// One decoded opcode with its argument, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<'a> {
    /// `PROTO` or `FRAME`: no effect on the value.
    Ignored,
    /// `STOP`: the pickle ends here.
    Stop,
    /// `MARK`.
    Mark,
    /// `POP`.
    Pop,
    /// `POP_MARK`.
    PopMark,
    /// `DUP`.
    Dup,
    /// `PUT`, `BINPUT`, `LONG_BINPUT`: memoize the stack top under this id.
    Put(u32),
    /// `MEMOIZE`: memoize the stack top under the next free id.
    Memoize,
    /// `GET`, `BINGET`, `LONG_BINGET`.
    Get(u32),
    /// `NONE`.
    None,
    /// `NEWTRUE` / `NEWFALSE`.
    Bool(bool),
    /// `BININT`, `BININT1`, `BININT2`.
    Int(i64),
    /// `INT`: a decimal text line (`00` / `01` are the protocol-1 booleans).
    TextInt(&'a [u8]),
    /// `LONG1` / `LONG4`: little-endian two's complement bytes.
    Long(&'a [u8]),
    /// `LONG`: a decimal text line.
    TextLong(&'a [u8]),
    /// `BINFLOAT`.
    Float(f64),
    /// `FLOAT`: a decimal text line.
    TextFloat(&'a [u8]),
    /// `BINUNICODE`, `SHORT_BINUNICODE`, `BINUNICODE8`: UTF-8 (not yet validated).
    Unicode(&'a [u8]),
    /// `UNICODE`: a raw-unicode-escaped text line.
    TextUnicode(&'a [u8]),
    /// `BINSTRING`, `SHORT_BINSTRING`: a Python 2 byte string.
    BinString(&'a [u8]),
    /// `STRING`: an escaped, quoted text line.
    TextString(&'a [u8]),
    /// `BINBYTES`, `SHORT_BINBYTES`, `BINBYTES8`, `BYTEARRAY8`.
    Bytes(&'a [u8]),
    /// `EMPTY_TUPLE`.
    EmptyTuple,
    /// `TUPLE1`, `TUPLE2`, `TUPLE3`: a tuple of the top 1 to 3 items.
    TupleN(u8),
    /// `TUPLE`: a tuple of the items above the mark.
    Tuple,
    /// `EMPTY_LIST`.
    EmptyList,
    /// `LIST`: a list of the items above the mark.
    List,
    /// `APPEND`.
    Append,
    /// `APPENDS`.
    Appends,
    /// `EMPTY_DICT`.
    EmptyDict,
    /// `DICT`: a dict of the items above the mark.
    Dict,
    /// `SETITEM`.
    SetItem,
    /// `SETITEMS`.
    SetItems,
    /// `EMPTY_SET`.
    EmptySet,
    /// `FROZENSET`: a frozenset of the items above the mark.
    FrozenSet,
    /// `ADDITEMS`.
    AddItems,
    /// `GLOBAL module\nname\n`.
    Global(&'a [u8], &'a [u8]),
    /// `STACK_GLOBAL`.
    StackGlobal,
    /// `REDUCE`.
    Reduce,
    /// `INST module\nname\n`.
    Inst,
    /// `OBJ`.
    Obj,
    /// `NEWOBJ`.
    NewObj,
    /// `NEWOBJ_EX`.
    NewObjEx,
    /// `BUILD`.
    Build,
}

/// Walks the opcodes of one pickle stream.
pub struct OpReader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// An interpreter driven by [`run`]: it gives the opcodes their meaning (its own stack and memo
/// model), [`run`] walks the stream.
pub trait Sink<'a> {
    /// What the stream decodes to.
    type Output;
    /// How the sink fails: from a tokenizer error ([`OpError`]) or its own.
    type Error: From<OpError>;

    /// One opcode other than `STOP`, found at byte `offset`; `raw` is its encoding (opcode
    /// and argument bytes).
    fn op(&mut self, offset: usize, op: Op<'a>, raw: &'a [u8]) -> Result<(), Self::Error>;

    /// A hook tried before each opcode is tokenized: the sink may decode the opcodes at the
    /// start of `rest` itself (its hot ones, straight from the bytes, each in one dispatch)
    /// and return how many bytes it used, or 0 to have the next opcode tokenized and passed
    /// to [`Sink::fast_path`] and [`Sink::op`]. It must not take `STOP`. The default takes
    /// nothing and compiles away.
    #[inline(always)]
    fn direct(&mut self, rest: &'a [u8]) -> Result<usize, Self::Error> {
        let _ = rest;
        Ok(0)
    }

    /// A fast path tried before [`Sink::op`]: the sink may decode the bytes after `op` itself
    /// (`rest`) and return how many it used, or 0 to go on normally. When it uses bytes, `op`
    /// is not passed to [`Sink::op`].
    #[inline]
    fn fast_path(&mut self, op: &Op<'a>, rest: &'a [u8]) -> usize {
        let _ = (op, rest);
        0
    }

    /// `STOP` at byte `offset`: the result.
    fn stop(self, offset: usize) -> Result<Self::Output, Self::Error>;
}

/// Runs `sink` over the opcodes of `data`: each opcode is decoded once ([`OpReader`]) and
/// handed to the sink; the stream must end with `STOP` ([`PickleProblem::MissingStop`]) and
/// nothing may follow it ([`PickleProblem::TrailingBytes`], checked after [`Sink::stop`]).
#[inline]
pub fn run<'a, S: Sink<'a>>(data: &'a [u8], mut sink: S) -> Result<S::Output, S::Error> {
    let mut ops = OpReader::new(data);
    loop {
        let used = sink.direct(ops.rest())?;
        if used > 0 {
            ops.skip(used);
            continue;
        }
        let (offset, op) = ops.next_op()?;
        if matches!(op, Op::Stop) {
            let out = sink.stop(offset)?;
            if ops.remaining() > 0 {
                return Err((ops.pos(), PickleProblem::TrailingBytes).into());
            }
            return Ok(out);
        }
        let used = sink.fast_path(&op, ops.rest());
        if used > 0 {
            ops.skip(used);
            continue;
        }
        sink.op(offset, op, &data[offset..ops.pos()])?;
    }
}

impl<'a> OpReader<'a> {
    /// Starts at the first byte of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        OpReader { data, pos: 0 }
    }

    /// Byte offset of the next opcode.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes after the current position.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The bytes after the current position.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// Moves past `n` bytes that the caller decoded itself (at most [`Self::remaining`]).
    pub fn skip(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.data.len());
    }

    /// The next opcode and its offset. At the end of the data this is an error: a pickle
    /// always ends with `STOP`, so running out of bytes means the file was cut short.
    #[inline]
    pub fn next_op(&mut self) -> Result<(usize, Op<'a>), OpError> {
        let start = self.pos;
        let code = *self
            .data
            .get(start)
            .ok_or((start, PickleProblem::MissingStop))?;
        self.pos += 1;
        let op = self.decode(code).map_err(|p| (start, p))?;
        Ok((start, op))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleProblem> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(PickleProblem::Truncated)?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], PickleProblem> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    fn u8_len(&mut self) -> Result<&'a [u8], PickleProblem> {
        let n = self.take_array::<1>()?[0] as usize;
        self.take(n)
    }

    fn u32_len(&mut self) -> Result<&'a [u8], PickleProblem> {
        let n = u32::from_le_bytes(self.take_array()?) as usize;
        self.take(n)
    }

    fn i32_len(&mut self) -> Result<&'a [u8], PickleProblem> {
        let n = i32::from_le_bytes(self.take_array()?);
        let n = usize::try_from(n).map_err(|_| PickleProblem::NegativeLength)?;
        self.take(n)
    }

    fn u64_len(&mut self) -> Result<&'a [u8], PickleProblem> {
        let n = u64::from_le_bytes(self.take_array()?);
        let n = usize::try_from(n).map_err(|_| PickleProblem::Truncated)?;
        self.take(n)
    }

    /// A text argument up to `\n` (or the end of the data, as `serde-pickle` accepts),
    /// without the newline and an optional `\r` before it.
    fn line(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        let (mut line, used) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += used;
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        line
    }

    fn memo_id_line(&mut self) -> Result<u32, PickleProblem> {
        let line = self.line();
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(PickleProblem::BadMemoId)
    }

    #[inline]
    fn decode(&mut self, code: u8) -> Result<Op<'a>, PickleProblem> {
        Ok(match code {
            b'G' => Op::Float(f64::from_be_bytes(self.take_array()?)),
            0x88 => Op::Bool(true),
            0x89 => Op::Bool(false),
            b'(' => Op::Mark,
            b'e' => Op::Appends,
            b'a' => Op::Append,
            0x94 => Op::Memoize,
            0x95 => {
                self.take(8)?;
                Op::Ignored
            }
            0x80 => {
                self.take(1)?;
                Op::Ignored
            }
            b'.' => Op::Stop,
            b'0' => Op::Pop,
            b'1' => Op::PopMark,
            b'2' => Op::Dup,
            b'p' => Op::Put(self.memo_id_line()?),
            b'q' => Op::Put(self.take_array::<1>()?[0].into()),
            b'r' => Op::Put(u32::from_le_bytes(self.take_array()?)),
            b'g' => Op::Get(self.memo_id_line()?),
            b'h' => Op::Get(self.take_array::<1>()?[0].into()),
            b'j' => Op::Get(u32::from_le_bytes(self.take_array()?)),
            b'N' => Op::None,
            b'I' => Op::TextInt(self.line()),
            b'J' => Op::Int(i32::from_le_bytes(self.take_array()?).into()),
            b'K' => Op::Int(self.take_array::<1>()?[0].into()),
            b'M' => Op::Int(u16::from_le_bytes(self.take_array()?).into()),
            b'L' => Op::TextLong(self.line()),
            0x8a => Op::Long(self.u8_len()?),
            0x8b => Op::Long(self.i32_len()?),
            b'F' => Op::TextFloat(self.line()),
            b'S' => Op::TextString(self.line()),
            b'T' => Op::BinString(self.i32_len()?),
            b'U' => Op::BinString(self.u8_len()?),
            b'V' => Op::TextUnicode(self.line()),
            b'X' => Op::Unicode(self.u32_len()?),
            0x8c => Op::Unicode(self.u8_len()?),
            0x8d => Op::Unicode(self.u64_len()?),
            b'B' => Op::Bytes(self.u32_len()?),
            b'C' => Op::Bytes(self.u8_len()?),
            0x8e | 0x96 => Op::Bytes(self.u64_len()?),
            b')' => Op::EmptyTuple,
            0x85 => Op::TupleN(1),
            0x86 => Op::TupleN(2),
            0x87 => Op::TupleN(3),
            b't' => Op::Tuple,
            b']' => Op::EmptyList,
            b'l' => Op::List,
            b'}' => Op::EmptyDict,
            b'd' => Op::Dict,
            b's' => Op::SetItem,
            b'u' => Op::SetItems,
            0x8f => Op::EmptySet,
            0x91 => Op::FrozenSet,
            0x90 => Op::AddItems,
            b'c' => {
                let module = self.line();
                let name = self.line();
                Op::Global(module, name)
            }
            0x93 => Op::StackGlobal,
            b'R' => Op::Reduce,
            b'i' => {
                self.line();
                self.line();
                Op::Inst
            }
            b'o' => Op::Obj,
            0x81 => Op::NewObj,
            0x92 => Op::NewObjEx,
            b'b' => Op::Build,
            other => return Err(PickleProblem::UnknownOpcode(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: &[u8]) -> Vec<Op<'_>> {
        let mut r = OpReader::new(data);
        let mut out = Vec::new();
        loop {
            let (_, op) = r.next_op().expect("valid opcodes");
            out.push(op);
            if op == Op::Stop {
                return out;
            }
        }
    }

    #[test]
    fn decodes_a_protocol_4_list() {
        // pickle.dumps([0.5, True], protocol=4)
        let data = b"\x80\x04\x95\x0f\x00\x00\x00\x00\x00\x00\x00]\x94(G?\xe0\x00\x00\x00\x00\x00\x00\x88e.";
        assert_eq!(
            ops(data),
            vec![
                Op::Ignored,
                Op::Ignored,
                Op::EmptyList,
                Op::Memoize,
                Op::Mark,
                Op::Float(0.5),
                Op::Bool(true),
                Op::Appends,
                Op::Stop
            ]
        );
    }

    #[test]
    fn text_arguments_stop_at_newline_or_end() {
        assert_eq!(ops(b"I01\r\n."), vec![Op::TextInt(b"01"), Op::Stop]);
        let mut r = OpReader::new(b"g12");
        assert_eq!(r.next_op(), Ok((0, Op::Get(12))));
        assert_eq!(r.next_op(), Err((3, PickleProblem::MissingStop)));
    }

    #[test]
    fn reports_truncation_negative_lengths_and_unknown_opcodes() {
        assert_eq!(
            OpReader::new(b"G\x00\x00").next_op(),
            Err((0, PickleProblem::Truncated))
        );
        assert_eq!(
            OpReader::new(b"\x8e\xff\xff\xff\xff\xff\xff\xff\xff").next_op(),
            Err((0, PickleProblem::Truncated))
        );
        assert_eq!(
            OpReader::new(b"T\xff\xff\xff\xff").next_op(),
            Err((0, PickleProblem::NegativeLength))
        );
        assert_eq!(
            OpReader::new(b"Q").next_op(),
            Err((0, PickleProblem::UnknownOpcode(b'Q')))
        );
        assert_eq!(
            OpReader::new(b"pxy\n").next_op(),
            Err((0, PickleProblem::BadMemoId))
        );
    }
}
