//! A pre-flight pass over a pickle stream, run before [`crate::decoder`] builds any value.
//!
//! Decoded values are plain trees (no reference counting), so a memoized object is copied
//! once per reference, and converting, comparing and dropping trees recurses. A crafted or
//! corrupt file could therefore overflow the stack (a million nested one-byte `TUPLE1`
//! opcodes) or expand exponentially (lists of references to lists of references). This pass
//! replays the stream on an abstract stack that tracks, for every item, only its nesting
//! depth and an upper bound on the number of values it expands to, and rejects the stream if
//! either exceeds a limit. It also reports truncation, unknown opcodes and stack underflow with
//! a byte offset, rejects objects modified after being shared (self-referencing structures),
//! and counts how often each memoized object is fetched, so the decoder can move a value on
//! its last use instead of copying it.
//!
//! The model follows `serde-pickle` 1.2.0's stack, mark and memo discipline opcode by opcode.
//! It does not check value types; the decoder reports those.

use std::collections::HashMap;

use crate::error::{OpError, PickleProblem};
use crate::opcodes::{run, Op, Sink};

/// Deepest container nesting accepted. Python's own pickler cannot write much deeper
/// structures (it recurses, with a default limit of 1000 frames, several per level); the
/// artifact's files nest at most ~30 levels (profile trees). Decoding, converting and dropping
/// a tree this deep fits easily in a 2 MiB thread stack.
pub const MAX_DEPTH: u32 = 200;

/// Nesting depth and expanded size of one stack item or memo entry.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// 1 for a scalar, 1 + the deepest element for a container.
    depth: u32,
    /// Upper bound on the number of values it decodes to, memo references expanded.
    weight: u64,
}

/// A stack item: its shape, and the memo entry it refers to (a memoized stack top stands for
/// the memo entry, and mutating opcodes then change the entry).
#[derive(Clone, Copy, Debug)]
struct Item {
    shape: Shape,
    memo: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct MemoEntry {
    shape: Shape,
    /// Which memoization this is, counting from 0 in stream order.
    event: usize,
    /// A second reference exists (`GET`): the entry must not grow any more, because the
    /// holders of earlier references recorded its old shape.
    shared: bool,
}

struct Machine {
    stack: Vec<Item>,
    marks: Vec<Vec<Item>>,
    memo: HashMap<u32, MemoEntry>,
    /// For every memoization in stream order, how many `GET`s refer to it.
    gets: Vec<u32>,
    /// Values copied or converted so far (upper bound).
    work: u64,
    work_limit: u64,
}

const SCALAR: Shape = Shape {
    depth: 1,
    weight: 1,
};

/// What the decoder needs to know ahead of time about the memo.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoPlan {
    /// For every memoization (`PUT`, `BINPUT`, `LONG_BINPUT`, `MEMOIZE`) in stream order, the
    /// number of `GET`s that will fetch it: after the last one the decoder can move the value
    /// instead of copying it.
    pub gets: Vec<u32>,
}

/// The most values a stream of `len` bytes may copy or convert (see [`check`]).
///
/// Linear in the input: generous enough for what Python writes (a repeated `numpy.bool_`
/// costs 2 bytes per reference and ~22 values of copying and converting), tight enough to
/// stop exponential expansion.
pub fn work_limit(len: usize) -> u64 {
    32u64.saturating_mul(len as u64).saturating_add(1 << 24)
}

/// Checks `data` and returns the memo plan when it can be decoded without unbounded
/// recursion or expansion; otherwise the offset and the problem.
pub fn check(data: &[u8]) -> Result<MemoPlan, OpError> {
    let work_limit = work_limit(data.len());
    let m = Machine {
        stack: Vec::with_capacity(64),
        marks: Vec::new(),
        memo: HashMap::new(),
        gets: Vec::new(),
        work: 0,
        work_limit,
    };
    run(data, m)
}

impl<'a> Sink<'a> for Machine {
    type Output = MemoPlan;
    type Error = OpError;

    #[inline]
    fn op(&mut self, offset: usize, op: Op<'a>, _raw: &'a [u8]) -> Result<(), OpError> {
        self.step(op).map_err(|p| (offset, p))
    }

    fn stop(mut self, offset: usize) -> Result<MemoPlan, OpError> {
        let top = self.pop().map_err(|p| (offset, p))?;
        self.charge(top.shape.weight).map_err(|p| (offset, p))?;
        Ok(MemoPlan { gets: self.gets })
    }
}

impl Machine {
    fn step(&mut self, op: Op<'_>) -> Result<(), PickleProblem> {
        match op {
            Op::Ignored | Op::Stop => {}
            Op::Mark => {
                let below = std::mem::take(&mut self.stack);
                self.marks.push(below);
            }
            Op::Pop => {
                if self.stack.is_empty() {
                    self.pop_mark()?;
                } else {
                    self.pop()?;
                }
            }
            Op::PopMark => {
                self.pop_mark()?;
            }
            Op::Dup => {
                // The decoder copies the value: an independent copy.
                let top = *self.stack.last().ok_or(PickleProblem::StackUnderflow)?;
                self.charge(top.shape.weight)?;
                self.push(top.shape, None);
            }
            Op::Put(id) => self.memoize(id)?,
            Op::Memoize => self.memoize(next_memo_id(self.memo.len())?)?,
            Op::Get(id) => {
                let entry = self
                    .memo
                    .get_mut(&id)
                    .ok_or(PickleProblem::MissingMemo(id))?;
                entry.shared = true;
                let shape = entry.shape;
                if let Some(count) = self.gets.get_mut(entry.event) {
                    *count = count.saturating_add(1);
                }
                // The decoder copies the value for every fetch but the last.
                self.charge(shape.weight)?;
                self.push(shape, Some(id));
            }
            Op::None
            | Op::Bool(_)
            | Op::Int(_)
            | Op::TextInt(_)
            | Op::Long(_)
            | Op::TextLong(_)
            | Op::Float(_)
            | Op::TextFloat(_)
            | Op::Unicode(_)
            | Op::TextUnicode(_)
            | Op::BinString(_)
            | Op::TextString(_)
            | Op::Bytes(_)
            | Op::Global(..) => self.push(SCALAR, None),
            Op::EmptyTuple | Op::EmptyList | Op::EmptyDict | Op::EmptySet => {
                self.push(container(&[])?, None)
            }
            Op::TupleN(n) => {
                let mut items = [SCALAR; 3];
                let n = usize::from(n);
                for slot in items[..n].iter_mut().rev() {
                    *slot = self.pop()?.shape;
                }
                let shape = container(&items[..n])?;
                self.push(shape, None);
            }
            Op::Tuple | Op::List | Op::Dict | Op::FrozenSet | Op::Inst => {
                let items = self.pop_mark()?;
                let shape = container_of(&items)?;
                self.push(shape, None);
            }
            Op::Append => {
                let item = self.pop()?;
                self.grow_top(item.shape.depth, item.shape.weight)?;
            }
            Op::SetItem => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.grow_top(
                    value.shape.depth.max(key.shape.depth),
                    value.shape.weight.saturating_add(key.shape.weight),
                )?;
            }
            Op::Appends | Op::SetItems | Op::AddItems => {
                let items = self.pop_mark()?;
                if !items.is_empty() {
                    let depth = items.iter().map(|i| i.shape.depth).max().unwrap_or(0);
                    let weight = items
                        .iter()
                        .fold(0u64, |w, i| w.saturating_add(i.shape.weight));
                    self.grow_top(depth, weight)?;
                }
            }
            Op::StackGlobal => {
                let name = self.pop()?;
                let module = self.pop()?;
                self.resolve(name)?;
                self.resolve(module)?;
                self.push(SCALAR, None);
            }
            Op::Reduce => {
                // The result is built from the (resolved) argument tuple: a set/list/bytes
                // of its last element, the state of a `_reconstructor` call, or the argument
                // tuple itself for any other callable. None is larger or deeper than the
                // tuple, plus one level.
                let args = self.pop()?;
                let callable = self.pop()?;
                self.resolve(args)?;
                self.resolve(callable)?;
                // Elements of the argument tuple are resolved once more.
                self.charge(args.shape.weight)?;
                let shape = container(&[args.shape])?;
                self.push(shape, None);
            }
            Op::Obj => {
                let args = self.pop_mark()?;
                self.pop()?;
                let shape = container_of(&args)?;
                self.push(shape, None);
            }
            Op::NewObj => {
                // The argument tuple stands in for the object until BUILD.
                let args = self.pop()?;
                self.pop()?;
                self.stack.push(args);
            }
            Op::NewObjEx => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                self.pop()?;
                let shape = container(&[args.shape, kwargs.shape])?;
                self.push(shape, None);
            }
            Op::Build => {
                // The state replaces the stand-in on the stack (the memo keeps the stand-in).
                let state = self.pop()?;
                self.pop()?;
                self.stack.push(state);
            }
        }
        Ok(())
    }

    fn push(&mut self, shape: Shape, memo: Option<u32>) {
        self.stack.push(Item { shape, memo });
    }

    fn pop(&mut self) -> Result<Item, PickleProblem> {
        self.stack.pop().ok_or(PickleProblem::StackUnderflow)
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, PickleProblem> {
        let below = self.marks.pop().ok_or(PickleProblem::StackUnderflow)?;
        Ok(std::mem::replace(&mut self.stack, below))
    }

    /// Taking a memoized value off the stack may copy it.
    fn resolve(&mut self, item: Item) -> Result<(), PickleProblem> {
        if item.memo.is_some() {
            self.charge(item.shape.weight)?;
        }
        Ok(())
    }

    fn charge(&mut self, weight: u64) -> Result<(), PickleProblem> {
        self.work = self.work.saturating_add(weight);
        if self.work > self.work_limit {
            return Err(PickleProblem::TooLarge {
                limit: self.work_limit,
            });
        }
        Ok(())
    }

    fn memoize(&mut self, id: u32) -> Result<(), PickleProblem> {
        let item = self.pop()?;
        if item.memo.is_some() {
            // Memoizing a reference stores a copy of the referenced value.
            self.charge(item.shape.weight)?;
        }
        self.memo.insert(
            id,
            MemoEntry {
                shape: item.shape,
                event: self.gets.len(),
                shared: false,
            },
        );
        self.gets.push(0);
        self.push(item.shape, Some(id));
        Ok(())
    }

    /// `APPEND(S)`, `SETITEM(S)`, `ADDITEMS`: the stack top (or the memo entry it refers to)
    /// takes in elements of the given depth and weight.
    fn grow_top(&mut self, depth: u32, weight: u64) -> Result<(), PickleProblem> {
        let top = self.stack.last_mut().ok_or(PickleProblem::StackUnderflow)?;
        let shape = Shape {
            depth: top.shape.depth.max(depth.saturating_add(1)),
            weight: top.shape.weight.saturating_add(weight),
        };
        if shape.depth > MAX_DEPTH {
            return Err(PickleProblem::TooDeep { limit: MAX_DEPTH });
        }
        top.shape = shape;
        if let Some(id) = top.memo {
            if let Some(entry) = self.memo.get_mut(&id) {
                if entry.shared {
                    return Err(PickleProblem::SharedMutation);
                }
                entry.shape = shape;
            }
        }
        Ok(())
    }
}

fn container(items: &[Shape]) -> Result<Shape, PickleProblem> {
    let depth = items.iter().map(|s| s.depth).max().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(PickleProblem::TooDeep { limit: MAX_DEPTH });
    }
    let weight = items.iter().fold(1u64, |w, s| w.saturating_add(s.weight));
    Ok(Shape { depth, weight })
}

fn container_of(items: &[Item]) -> Result<Shape, PickleProblem> {
    let shapes: Vec<Shape> = items.iter().map(|i| i.shape).collect();
    container(&shapes)
}

/// The id `MEMOIZE` stores under: the number of memoized objects so far.
pub(crate) fn next_memo_id(memoized: usize) -> Result<u32, PickleProblem> {
    u32::try_from(memoized).map_err(|_| PickleProblem::TooLarge {
        limit: u32::MAX.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_tuples(levels: usize) -> Vec<u8> {
        let mut p = b"\x80\x04N".to_vec();
        p.extend(std::iter::repeat_n(0x85u8, levels));
        p.push(b'.');
        p
    }

    #[test]
    fn accepts_nesting_up_to_the_limit_and_serde_pickle_decodes_it() {
        let p = nested_tuples(MAX_DEPTH as usize - 1);
        assert_eq!(check(&p), Ok(MemoPlan::default()));
        let v = serde_pickle::value_from_slice(&p, serde_pickle::DeOptions::new());
        assert!(v.is_ok());
    }

    #[test]
    fn rejects_deep_nesting_before_decoding() {
        let p = nested_tuples(1_000_000);
        assert_eq!(
            check(&p),
            Err((
                3 + MAX_DEPTH as usize - 1,
                PickleProblem::TooDeep { limit: MAX_DEPTH }
            ))
        );
    }

    #[test]
    fn rejects_exponential_expansion_through_shared_references() {
        // l0 = [None]; l(k+1) = [l(k)] * 8 via GET; 30 levels expand to 8^30 values.
        let mut p = b"\x80\x04]\x94N".to_vec();
        p.push(b'a');
        for k in 0..30u32 {
            p.extend_from_slice(b"]\x94(");
            for _ in 0..8 {
                p.push(b'j');
                p.extend_from_slice(&(k * 2).to_le_bytes());
            }
            p.push(b'e');
            // the new list was memoized as 2k+1; store it again as 2k+2 for the next level
            p.extend_from_slice(b"r");
            p.extend_from_slice(&(k * 2 + 2).to_le_bytes());
        }
        p.push(b'.');
        assert!(matches!(
            check(&p),
            Err((_, PickleProblem::TooLarge { .. }))
        ));
    }

    #[test]
    fn counts_gets_per_memoization() {
        // [x, x, y] with x memoized as 1 (fetched twice) and y as 2 (never fetched)
        let p = b"\x80\x04]\x94(N\x94h\x01h\x01N\x94e.";
        assert_eq!(
            check(p),
            Ok(MemoPlan {
                gets: vec![0, 2, 0]
            })
        );
    }

    #[test]
    fn rejects_self_referencing_lists() {
        // a = []; a.append(a)
        let p = b"\x80\x04]\x94h\x00a.";
        assert_eq!(check(p), Err((6, PickleProblem::SharedMutation)));
    }

    #[test]
    fn reports_underflow_missing_memo_trailing_bytes_and_truncation() {
        assert_eq!(check(b"a."), Err((0, PickleProblem::StackUnderflow)));
        assert_eq!(check(b"h\x05."), Err((0, PickleProblem::MissingMemo(5))));
        assert_eq!(check(b"N.x"), Err((2, PickleProblem::TrailingBytes)));
        assert_eq!(check(b"\x80\x04]"), Err((3, PickleProblem::MissingStop)));
        assert_eq!(check(b""), Err((0, PickleProblem::MissingStop)));
    }
}
