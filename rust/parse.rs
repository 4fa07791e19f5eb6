// SPDX-License-Identifier: GPL-2.0

//! Strict parsing of table arguments, messages and sysfs input.
//!
//! Numbers are plain decimal: no sign, no spaces inside, no hex, no
//! overflow. A trailing newline (from `echo`) is accepted for sysfs input.

use kernel::prelude::*;

/// Parses a decimal `u64`.
pub(crate) fn u64_dec(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, c| acc.checked_mul(10)?.checked_add(u64::from(c - b'0')))
}

/// Parses a decimal in `min..=max`.
pub(crate) fn ranged(s: &str, min: u64, max: u64) -> Option<u64> {
    u64_dec(s).filter(|v| (min..=max).contains(v))
}

/// Sysfs input: UTF-8 with at most one trailing newline.
pub(crate) fn sysfs_input(buf: &[u8]) -> Result<&str> {
    let s = core::str::from_utf8(buf).map_err(|_| EINVAL)?;
    Ok(s.strip_suffix('\n').unwrap_or(s))
}

/// Case-insensitive ASCII comparison (messages are case-insensitive).
pub(crate) fn is(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}
