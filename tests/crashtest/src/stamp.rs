//! Sector stamps: every 512-byte sector a workload op writes says which
//! run, device, op and sector it belongs to, and carries filler derived
//! from those and a CRC, so the checker can tell exactly which write a
//! sector's content came from, or that it is garbage.
//!
//! Layout (little-endian):
//!   0  u32 magic "WBCT"      4  u32 device id
//!   8  u32 op number        12  u32 0
//!  16  u64 sector (device-relative, 512-byte units)
//!  24  u64 run seed
//!  32  476 bytes filler (from the fields above)
//! 508  u32 CRC-32C of bytes 0..508

use crate::crc::crc32c;
use crate::rng::mix64;

pub const SECTOR: usize = 512;
pub const MAGIC: u32 = 0x5443_4257; // "WBCT"

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u32,
    pub op: u32,
    pub sector: u64,
    pub seed: u64,
}

/// What a sector read back holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Zero,
    /// A complete, intact stamp.
    Stamp(Stamp),
    /// A stamp header whose CRC or filler is wrong (torn or corrupted).
    Damaged(Stamp),
    /// Anything else.
    Garbage,
}

fn filler_word(st: &Stamp, i: u64) -> u64 {
    mix64(st.seed ^ mix64(((st.dev as u64) << 32 | st.op as u64) ^ mix64(st.sector.wrapping_add(i << 48))))
}

/// Writes the stamp of `st` into a 512-byte sector.
pub fn fill(buf: &mut [u8], st: &Stamp) {
    assert_eq!(buf.len(), SECTOR);
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..8].copy_from_slice(&st.dev.to_le_bytes());
    buf[8..12].copy_from_slice(&st.op.to_le_bytes());
    buf[12..16].copy_from_slice(&0u32.to_le_bytes());
    buf[16..24].copy_from_slice(&st.sector.to_le_bytes());
    buf[24..32].copy_from_slice(&st.seed.to_le_bytes());
    let mut w = filler_word(st, 0);
    for (i, chunk) in buf[32..508].chunks_mut(8).enumerate() {
        if i % 4 == 0 {
            w = filler_word(st, i as u64 + 1);
        } else {
            w = mix64(w);
        }
        let b = w.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let c = crc32c(&buf[0..508]);
    buf[508..512].copy_from_slice(&c.to_le_bytes());
}

/// Decodes a 512-byte sector. The CRC stands for the filler (which is not
/// regenerated: every sector of every device is decoded at every crash
/// point).
pub fn decode(buf: &[u8]) -> Content {
    assert_eq!(buf.len(), SECTOR);
    let u32_at = |o: usize| u32::from_le_bytes(buf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap());
    if u32_at(0) != MAGIC {
        if buf.iter().all(|&b| b == 0) {
            return Content::Zero;
        }
        return Content::Garbage;
    }
    let st = Stamp { dev: u32_at(4), op: u32_at(8), sector: u64_at(16), seed: u64_at(24) };
    if u32_at(12) == 0 && crc32c(&buf[0..508]) == u32_at(508) {
        Content::Stamp(st)
    } else {
        Content::Damaged(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let st = Stamp { dev: 2, op: 77, sector: 1234, seed: 9 };
        let mut b = [0u8; SECTOR];
        fill(&mut b, &st);
        assert_eq!(decode(&b), Content::Stamp(st));
        b[300] ^= 1;
        assert_eq!(decode(&b), Content::Damaged(st));
        assert_eq!(decode(&[0u8; SECTOR]), Content::Zero);
        let mut g = [0u8; SECTOR];
        g[5] = 1;
        assert_eq!(decode(&g), Content::Garbage);
    }

    #[test]
    fn fillers_differ() {
        let mut a = [0u8; SECTOR];
        let mut b = [0u8; SECTOR];
        fill(&mut a, &Stamp { dev: 1, op: 1, sector: 0, seed: 1 });
        fill(&mut b, &Stamp { dev: 1, op: 1, sector: 1, seed: 1 });
        assert_ne!(a[32..508], b[32..508]);
    }
}
