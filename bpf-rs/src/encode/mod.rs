//! Records -> output formats, for many events at once and without an object
//! per event in the caller: JSON lines ([`json`]), strace-style text
//! ([`text`]) and the protobuf `EventBatch` of `proto/syshub/v1/event.proto`
//! ([`proto`]). [`doc`] describes the event document once; the JSON encoder
//! and the Python `Event.to_dict()` both follow it.

pub mod doc;
pub mod json;
pub mod packed;
pub mod proto;
pub mod records;
pub mod text;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::abi::SyscallEvent;
use crate::decode::{self, Decoded};

pub use doc::{Doc, Extra, Sink, event_doc};
pub use json::{JsonSink, encode_json};
pub use packed::{Unpacked, pack, unpack, unpack_checked};
pub use proto::encode_proto;
pub use records::{encode_records, split_records};
pub use text::encode_text;

/// The container of each pid namespace (`None` or absent: unknown), as the
/// caller's topology describes it (`Container.to_dict()`).
pub type Containers = HashMap<u32, Option<Doc>>;

/// A record decoded, or for a record that does not decode (it was validated
/// when read, so this does not happen) its header with no arguments.
#[must_use]
pub fn decoded(rec: &[u8]) -> Decoded {
    decode::decode(rec).unwrap_or_else(|_| {
        let hdr = SyscallEvent::read(rec).unwrap_or_default();
        Decoded {
            name: format!("syscall_{}", hdr.nr).into(),
            args: Vec::new(),
            errno: None,
            hdr,
        }
    })
}
