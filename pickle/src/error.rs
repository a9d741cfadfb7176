//! What can be wrong with a pickle byte stream.

use std::fmt;

/// Where a problem was found: the byte offset of the opcode, and what is wrong.
pub type OpError = (usize, PickleProblem);

/// What is structurally wrong with a pickle byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickleProblem {
    /// The data ends in the middle of an opcode's argument.
    Truncated,
    /// The data ends without the final `STOP` opcode.
    MissingStop,
    /// Bytes follow the `STOP` opcode.
    TrailingBytes,
    /// An opcode this decoder does not support (or not an opcode at all).
    UnknownOpcode(u8),
    /// A length prefix is negative.
    NegativeLength,
    /// A text memo id (`PUT` / `GET`) is not a number.
    BadMemoId,
    /// A text or long-integer literal does not parse.
    BadLiteral,
    /// A string is not valid UTF-8.
    NotUtf8,
    /// An opcode found the wrong kind of value on the stack.
    BadOperand {
        /// The opcode.
        op: &'static str,
        /// What it needs.
        expected: &'static str,
    },
    /// A dict key or set element is a list, dict or set.
    Unhashable,
    /// A reference to a class or function is left in the data (e.g. a numpy array or a torch
    /// tensor, which only Python can rebuild).
    UnresolvedGlobal,
    /// `GET` of a memo id that was never stored.
    MissingMemo(u32),
    /// An opcode needs more stack items than there are (or a `MARK` that is not there).
    StackUnderflow,
    /// Containers nest deeper than the limit.
    TooDeep {
        /// The nesting limit.
        limit: u32,
    },
    /// Shared references would expand to far more values than the file holds.
    TooLarge {
        /// The limit on decoded values.
        limit: u64,
    },
    /// An object is modified after a second reference to it was taken (a self-referencing
    /// structure, which the decoder cannot represent).
    SharedMutation,
}

impl fmt::Display for PickleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleProblem::Truncated => {
                f.write_str("the data ends inside an opcode (truncated file?)")
            }
            PickleProblem::MissingStop => {
                f.write_str("the data ends before the STOP opcode (truncated file?)")
            }
            PickleProblem::TrailingBytes => f.write_str("bytes follow the STOP opcode"),
            PickleProblem::UnknownOpcode(code) => write!(f, "unsupported opcode 0x{code:02x}"),
            PickleProblem::NegativeLength => f.write_str("negative length prefix"),
            PickleProblem::BadMemoId => f.write_str("memo id is not a number"),
            PickleProblem::BadLiteral => f.write_str("a text or integer literal does not parse"),
            PickleProblem::NotUtf8 => f.write_str("a string is not valid UTF-8"),
            PickleProblem::BadOperand { op, expected } => write!(f, "{op} needs {expected}"),
            PickleProblem::Unhashable => f.write_str("a dict key or set element is not hashable"),
            PickleProblem::UnresolvedGlobal => f.write_str(
                "an object only Python can rebuild (e.g. a numpy array) is left in the data",
            ),
            PickleProblem::MissingMemo(id) => write!(f, "memo id {id} was never stored"),
            PickleProblem::StackUnderflow => f.write_str("stack underflow"),
            PickleProblem::TooDeep { limit } => {
                write!(f, "containers nest deeper than {limit} levels")
            }
            PickleProblem::TooLarge { limit } => {
                write!(f, "shared references expand to more than {limit} values")
            }
            PickleProblem::SharedMutation => f.write_str(
                "an object is modified after being referenced twice (self-referencing structure)",
            ),
        }
    }
}

impl std::error::Error for PickleProblem {}
