//! Raw records: validation (never trusting an unchecked length) and the
//! captures that follow the header.

use std::borrow::Cow;

use crate::abi::{self, Capture, SyscallEvent};

/// Why a record was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    Kind(u16),
    #[error("record says {said} bytes but {got} arrived")]
    Size { said: u32, got: usize },
    #[error("capture {index} overruns the record")]
    Capture { index: usize },
    #[error("syscall number {0} out of range")]
    Nr(u32),
}

/// One captured argument, borrowed from its record.
#[derive(Clone, Copy, Debug)]
pub struct CaptureRef<'a> {
    pub cap: Capture,
    pub data: &'a [u8],
}

/// Checks a record and returns its header and captures.
///
/// # Errors
/// [`DecodeError`] when the header, size or any capture is inconsistent.
pub fn parse(rec: &[u8]) -> Result<(SyscallEvent, Vec<CaptureRef<'_>>), DecodeError> {
    let hdr = validate(rec)?;
    Ok((hdr, captures(rec, &hdr)))
}

/// Validates a record (header, size, every capture inside bounds).
///
/// # Errors
/// [`DecodeError`] describing the first inconsistency.
pub fn validate(rec: &[u8]) -> Result<SyscallEvent, DecodeError> {
    check(rec).map(Cow::into_owned)
}

/// [`validate`], the header in place when the record is aligned for it (a
/// ring or batch record is): no copy of its 160 bytes for a caller that
/// reads a few fields (the reader thread, the client's unpacking).
///
/// # Errors
/// [`DecodeError`] describing the first inconsistency.
pub fn check(rec: &[u8]) -> Result<Cow<'_, SyscallEvent>, DecodeError> {
    let hdr = match SyscallEvent::view(rec) {
        Some(h) => Cow::Borrowed(h),
        None => Cow::Owned(SyscallEvent::read(rec).ok_or(DecodeError::Short(rec.len()))?),
    };
    if hdr.kind != abi::REC_SYSCALL {
        return Err(DecodeError::Kind(hdr.kind));
    }
    let size = hdr.size as usize;
    if size < abi::EVENT_SIZE || size > rec.len() || size > abi::REC_MAX {
        return Err(DecodeError::Size {
            said: hdr.size,
            got: rec.len(),
        });
    }
    if hdr.nr >= abi::MAX_SYSCALLS {
        return Err(DecodeError::Nr(hdr.nr));
    }
    let mut off = abi::EVENT_SIZE;
    for index in 0..usize::from(hdr.ncaptures) {
        let cap = Capture::read(rec.get(off..size).unwrap_or_default())
            .ok_or(DecodeError::Capture { index })?;
        let data_end = off
            .checked_add(abi::CAPTURE_SIZE)
            .and_then(|d| d.checked_add(cap.len as usize))
            .ok_or(DecodeError::Capture { index })?;
        if data_end > size || usize::from(cap.slot) >= abi::NARGS {
            return Err(DecodeError::Capture { index });
        }
        off = (data_end + 7) & !7;
    }
    Ok(hdr)
}

/// Captures of a record that [`validate`] accepted.
#[must_use]
pub fn captures<'a>(rec: &'a [u8], hdr: &SyscallEvent) -> Vec<CaptureRef<'a>> {
    let size = (hdr.size as usize).min(rec.len());
    let mut out = Vec::with_capacity(usize::from(hdr.ncaptures));
    let mut off = abi::EVENT_SIZE;
    for _ in 0..hdr.ncaptures {
        let Some(cap) = Capture::read(rec.get(off..size).unwrap_or_default()) else {
            break;
        };
        let start = off + abi::CAPTURE_SIZE;
        let Some(data) = rec.get(start..start + cap.len as usize) else {
            break;
        };
        out.push(CaptureRef { cap, data });
        off = (start + cap.len as usize + 7) & !7;
    }
    out
}
