//! The ranges user-supplied settings must fall in: one place, shared by the
//! probe, the filters and the Python binding (which exports them).

use crate::abi;
use crate::error::{Error, Result};

/// Largest string capture per argument (`str_max`), bytes.
pub const STR_MAX_LIMIT: u32 = abi::CAP_MAX;
/// Largest number of argv/envp entries captured (`argv_max`).
pub const ARGV_MAX_LIMIT: u32 = abi::ARGV_LIMIT as u32;
/// Largest buffer capture per argument (`buf_max`), bytes.
pub const BUF_MAX_LIMIT: u32 = abi::CAP_MAX;
/// Largest sampling rate (1 in N); the kernel keeps it in 32 bits.
pub const SAMPLE_RATE_MAX: u32 = u32::MAX;
/// Smallest ring buffer: one page.
pub const RING_BYTES_MIN: u32 = 4096;
/// Largest ring buffer the probe accepts (1 GiB).
pub const RING_BYTES_MAX: u32 = 1 << 30;

/// `value` as a `T` when it lies in `min..=max`, else an
/// [`Error::InvalidArgument`] naming the setting and its range.
///
/// # Errors
/// `value` outside `min..=max`.
pub fn in_range<T: TryFrom<i128>>(name: &str, value: i128, min: i128, max: i128) -> Result<T> {
    if (min..=max).contains(&value)
        && let Ok(v) = T::try_from(value)
    {
        return Ok(v);
    }
    Err(out_of_range(name, &value.to_string(), min, max))
}

/// The error for a setting outside `min..=max` (`shown` is the value as the
/// user wrote it, which may not fit any integer type).
#[must_use]
pub fn out_of_range(name: &str, shown: &str, min: i128, max: i128) -> Error {
    Error::InvalidArgument(format!("{name} must be in {min}..={max}, got {shown}"))
}

/// A ring buffer size: a power of two in `RING_BYTES_MIN..=RING_BYTES_MAX`.
///
/// # Errors
/// Out of range or not a power of two.
pub fn ring_bytes(value: i128) -> Result<u32> {
    let v: u32 = in_range(
        "ring_bytes",
        value,
        RING_BYTES_MIN.into(),
        RING_BYTES_MAX.into(),
    )?;
    if !v.is_power_of_two() {
        return Err(Error::InvalidArgument(format!(
            "ring_bytes must be a power of two in {RING_BYTES_MIN}..={RING_BYTES_MAX}, got {v}"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(in_range::<u16>("str_max", 4096, 1, 4096).ok(), Some(4096));
        let e = in_range::<u16>("str_max", 4097, 1, 4096).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: str_max must be in 1..=4096, got 4097"
        );
        assert!(in_range::<u32>("x", -1, 0, 10).is_err());
        assert!(in_range::<u8>("x", 300, 0, 1000).is_err());
        assert_eq!(ring_bytes(4096).ok(), Some(4096));
        assert!(ring_bytes(4097 * 2).is_err());
        assert!(ring_bytes(i128::from(RING_BYTES_MAX) * 2).is_err());
        assert!(ring_bytes(-4096).is_err());
        assert_eq!(ring_bytes(RING_BYTES_MAX.into()).ok(), Some(RING_BYTES_MAX));
    }
}
