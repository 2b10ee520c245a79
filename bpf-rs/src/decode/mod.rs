//! Raw ring records -> typed syscall events. Pure code: validating a record
//! never trusts a length it has not checked, and decoding never panics on a
//! record that passed validation (fuzzed in tests).
//!
//! `record` validates and splits records, `argtype` holds the argument types
//! parsed once from the syscall table, `scalar`/`structs`/`sockaddr` turn
//! registers and captures into [`Value`]s, `args` decodes a whole record,
//! `escape`/`value`/`text` render text.

mod args;
mod argtype;
mod errno;
mod escape;
mod outcome;
mod record;
mod scalar;
mod sockaddr;
mod structs;
mod text;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use args::{Decoded, decode, decode_args};
pub use argtype::{ArgType, Captured, Render, StructType, Table};
pub use errno::{errno_entries, errno_name, errno_number, errno_of};
pub use escape::{escape, escape_into, quote};
pub use outcome::{restart_name, result_of, returned};
pub use record::{CaptureRef, DecodeError, captures, check, parse, validate};
pub use scalar::render_scalar;
pub use sockaddr::SockAddr;
pub use structs::decode_struct;
pub use value::{Arg, Value};
