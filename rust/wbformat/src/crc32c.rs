// SPDX-License-Identifier: GPL-2.0

//! CRC-32C (Castagnoli), the checksum of every writeboost metadata block and
//! segment.
//!
//! Parameters: reflected polynomial `0x82F63B78`, initial value `0xFFFFFFFF`,
//! final xor `0xFFFFFFFF` (the check value of `b"123456789"` is
//! `0xE3069283`).
//!
//! [`crc32c_raw_update`] is the raw update step without the pre- and
//! post-inversion, with the same semantics as Linux's `crc32c(crc, buf, len)`.
//! Every checksum API of this crate that matters takes such a raw update
//! function (an [`UpdateFn`]) and computes `!update(!0, bytes...)`, so the
//! kernel can pass its own accelerated `crc32c()` while the tools and tests
//! use the portable table-driven one here.

/// A raw CRC32C update function: `update(state, bytes)` returns the new
/// state, with no pre- or post-inversion (the semantics of Linux's
/// `crc32c()` and of [`crc32c_raw_update`]).
pub type UpdateFn = fn(u32, &[u8]) -> u32;

/// The reflected CRC-32C polynomial.
pub const POLYNOMIAL: u32 = 0x82F6_3B78;

/// Slice-by-8 tables, computed at compile time. `TABLES[0]` is the classic
/// byte-at-a-time table; `TABLES[k][b]` is the CRC of byte `b` followed by
/// `k` zero bytes.
static TABLES: [[u32; 256]; 8] = build_tables();

const fn build_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    tables
}

/// Feeds `data` into the raw CRC32C state `state` and returns the new state.
///
/// No inversion is applied on entry or exit: this is the same function as
/// Linux's `crc32c(state, data, len)`. A complete checksum is
/// `!crc32c_raw_update(!0, data)`; see [`crc32c`].
pub fn crc32c_raw_update(state: u32, data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut crc = state;
    let mut rest = data;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        let x = u64::from_le_bytes(*word) ^ u64::from(crc);
        crc = t[7][usize::from(x as u8)]
            ^ t[6][usize::from((x >> 8) as u8)]
            ^ t[5][usize::from((x >> 16) as u8)]
            ^ t[4][usize::from((x >> 24) as u8)]
            ^ t[3][usize::from((x >> 32) as u8)]
            ^ t[2][usize::from((x >> 40) as u8)]
            ^ t[1][usize::from((x >> 48) as u8)]
            ^ t[0][usize::from((x >> 56) as u8)];
        rest = tail;
    }
    for &byte in rest {
        crc = (crc >> 8) ^ t[0][usize::from((crc as u8) ^ byte)];
    }
    crc
}

/// The CRC32C of `data` (`!crc32c_raw_update(!0, data)`).
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_raw_update(!0, data)
}

/// A streaming CRC32C computation over any number of byte slices, generic over
/// the raw update function (see [`UpdateFn`]).
///
/// ```
/// use wbformat::crc32c::{crc32c, Crc32c};
/// let mut c = Crc32c::new();
/// c.update(b"1234");
/// c.update(b"56789");
/// assert_eq!(c.finish(), crc32c(b"123456789"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Crc32c<F = UpdateFn> {
    state: u32,
    func: F,
}

impl Crc32c<UpdateFn> {
    /// A computation using this crate's table-driven [`crc32c_raw_update`].
    pub fn new() -> Self {
        Self::with_update(crc32c_raw_update)
    }
}

impl Default for Crc32c<UpdateFn> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Fn(u32, &[u8]) -> u32> Crc32c<F> {
    /// A computation using the raw update function `func` (for example the
    /// kernel's accelerated `crc32c()`).
    pub fn with_update(func: F) -> Self {
        Self { state: !0, func }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.state = (self.func)(self.state, data);
    }

    /// Feeds `count` zero bytes.
    pub fn update_zeros(&mut self, count: usize) {
        const ZEROS: [u8; 64] = [0; 64];
        let mut left = count;
        while left > 0 {
            let n = if left < ZEROS.len() {
                left
            } else {
                ZEROS.len()
            };
            self.update(ZEROS.get(..n).unwrap_or(&[]));
            left -= n;
        }
    }

    /// The checksum of everything fed so far. The computation can go on.
    pub fn finish(&self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLYNOMIAL
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn known_vectors() {
        // RFC 3720 (iSCSI) B.4 test vectors.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let inc: std::vec::Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46DD_794E);
        let dec: std::vec::Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c(&dec), 0x113F_DB5C);
    }

    #[test]
    fn matches_bitwise_for_all_lengths_and_splits() {
        let data: std::vec::Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(151) >> 3) as u8)
            .collect();
        for len in 0..data.len() {
            let d = &data[..len];
            assert_eq!(crc32c(d), bitwise(d), "len {len}");
            for split in [0, 1, len / 3, len / 2, len]
                .into_iter()
                .filter(|&s| s <= len)
            {
                let mut c = Crc32c::new();
                c.update(&d[..split]);
                c.update(&d[split..]);
                assert_eq!(c.finish(), bitwise(d));
            }
        }
    }

    #[test]
    fn zeros() {
        let mut c = Crc32c::new();
        c.update(b"ab");
        c.update_zeros(200);
        let mut v = std::vec![b'a', b'b'];
        v.extend_from_slice(&[0; 200]);
        assert_eq!(c.finish(), crc32c(&v));
    }
}
