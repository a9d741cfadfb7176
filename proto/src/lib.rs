#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The wire protocol's version. Bump it when a message or field changes meaning or a call is
/// added or removed; a worker of another version is refused at `Register` and `Heartbeat`
/// (`FAILED_PRECONDITION`), so old and new processes never mix silently. Version 2: `BuildInputs`
/// replies and `UploadInputs` for backend inputs (issue #13); `RegisterReply` says how results
/// are stored (`result_storage`, issue #15).
pub const PROTOCOL_VERSION: u32 = 2;

/// Result and input files travel in chunks of at most this many bytes (well below tonic's
/// 4 MiB message limit).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// The metadata key carrying the token (`authorization: Bearer <token>`).
pub const AUTH_HEADER: &str = "authorization";

/// The generated messages and the client and server of `apparate.v1.Coordinator`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("apparate.v1");
}

pub use tonic;
