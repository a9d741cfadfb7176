//! Newtype ids (STYLE 8): each id is its own type, so a task key can never be passed where
//! another id (or a bare string) is expected.
//!
//! One module for every id of the workspace: `string_id!` generates the path-safe text ids
//! ([`TaskKey`]), `num_id!` the numbered ones of distributed sweeps ([`WorkerId`],
//! [`AttemptId`]), which the coordinator and the remote worker share. Ids that name a file or
//! folder are checked to be *path-safe*: they can never escape the folder they are joined onto.
//!
//! ```compile_fail
//! use apparate::ids::TaskKey;
//! fn wants_key(_k: &TaskKey) {}
//! // A bare string is not a key:
//! wants_key(&String::from("cv-resnet18-auburn-0123456789abcdef"));
//! ```
//!
//! ```compile_fail
//! use apparate::ids::{AttemptId, WorkerId};
//! fn takes_worker(_: WorkerId) {}
//! takes_worker(AttemptId::new(1));
//! ```

/// An id that is not path-safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {problem}")]
pub struct IdError {
    /// The id type (`task key`, ...).
    pub kind: &'static str,
    /// The rejected text.
    pub value: String,
    /// What is wrong.
    pub problem: &'static str,
}

/// The longest id accepted (keeps file names well under common 255-byte limits).
pub const MAX_ID_LEN: usize = 160;

/// Checks that `value` is a path-safe id: 1 to [`MAX_ID_LEN`] characters from `[A-Za-z0-9._-]`,
/// not starting with `.` or `-` (so never `.`, `..`, a hidden name or an option).
pub fn check_path_safe(kind: &'static str, value: &str) -> Result<(), IdError> {
    let bad = |problem| {
        Err(IdError {
            kind,
            value: value.to_string(),
            problem,
        })
    };
    if value.is_empty() {
        return bad("empty");
    }
    if value.len() > MAX_ID_LEN {
        return bad("longer than 160 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    if value.starts_with('.') || value.starts_with('-') {
        return bad("must not start with '.' or '-'");
    }
    Ok(())
}

/// Defines a path-safe string id type: `Display`, `AsRef<str>`, ordering, hashing, serde as a
/// plain string (checked on deserialisation), `parse` (checked) and `as_str`.
#[macro_export]
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` (see [`check_path_safe`](crate::ids::check_path_safe)) and wraps it.
            pub fn parse(value: &str) -> Result<Self, $crate::ids::IdError> {
                $crate::ids::check_path_safe($kind, value)?;
                Ok(Self(value.to_string()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A task's content-addressed key: a readable slug and 16 hex digits of a SHA-256 over the
    /// canonical task spec, its input digests and the code version
    /// ([`crate::sweep::key`]). Path-safe: it names the task's folder `tasks/<key>/`.
    TaskKey,
    "task key"
);

/// Defines a numbered id type: `new`, `get`, `next`, ordering, hashing, and `Display` /
/// `Debug` as the prefix and the number (`w3`, `a17`).
#[macro_export]
macro_rules! num_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw number (from the wire or the ledger database).
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The id after this one.
            pub const fn next(self) -> Self {
                Self(self.0 + 1)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}

num_id!(
    /// A registered worker of a distributed sweep (one `worker --coordinator` registration).
    WorkerId,
    "w"
);
num_id!(
    /// One attempt at a task: a new id for every lease, so a result can be matched to the
    /// lease it was produced under (fencing).
    AttemptId,
    "a"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_safety() {
        for ok in ["a", "cv-resnet18-auburn-0123abcd", "x_1.5"] {
            assert!(TaskKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", ".hidden", "-opt", "a/b", "a\\b", "a b", "é", "a\0",
        ] {
            assert!(TaskKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TaskKey::parse(&"a".repeat(MAX_ID_LEN + 1)).is_err());
    }
}
