//! The 512-byte sector stamp.
//!
//! ```text
//! 0..4     magic b"WBPT"
//! 4..8     seed, u32 LE
//! 8..16    absolute sector number on the device, u64 LE
//! 16..24   generation (op number + gen base), u64 LE; 0 is reserved
//! 24..28   CRC-32 (IEEE) of bytes 28..512 followed by bytes 0..24, u32 LE
//! 28..512  xorshift64 filler derived from (seed, sector, generation)
//! ```

use crate::crc32::Crc32;

pub const SECTOR_SIZE: usize = 512;
pub const MAGIC: [u8; 4] = *b"WBPT";

/// splitmix64 finaliser: a good 64-bit mixing function.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u32, sector: u64, gen: u64) -> Self {
        let s = splitmix64(splitmix64(splitmix64(u64::from(seed)) ^ sector) ^ gen);
        XorShift64(if s == 0 { 0x9E37_79B9_7F4A_7C15 } else { s })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The CRC stored at 24..28: over bytes 28..512, then bytes 0..24.
pub fn stamp_crc(sec: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(&sec[28..SECTOR_SIZE]);
    c.update(&sec[0..24]);
    c.finish()
}

/// Fill `sec` (exactly 512 bytes) with the stamp of (seed, sector, gen).
pub fn write_stamp(sec: &mut [u8], seed: u32, sector: u64, gen: u64) {
    debug_assert_eq!(sec.len(), SECTOR_SIZE);
    sec[0..4].copy_from_slice(&MAGIC);
    sec[4..8].copy_from_slice(&seed.to_le_bytes());
    sec[8..16].copy_from_slice(&sector.to_le_bytes());
    sec[16..24].copy_from_slice(&gen.to_le_bytes());
    let mut rng = XorShift64::new(seed, sector, gen);
    for chunk in sec[28..SECTOR_SIZE].chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let crc = stamp_crc(sec);
    sec[24..28].copy_from_slice(&crc.to_le_bytes());
}

/// Stamp every sector of `buf` (a multiple of 512 bytes) starting at
/// device sector `first`.
pub fn stamp_range(buf: &mut [u8], seed: u32, first: u64, gen: u64) {
    for (k, sec) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
        write_stamp(sec, seed, first + k as u64, gen);
    }
}

fn filler_matches(sec: &[u8], seed: u32, sector: u64, gen: u64) -> bool {
    let mut rng = XorShift64::new(seed, sector, gen);
    sec[28..SECTOR_SIZE]
        .chunks(8)
        .all(|chunk| rng.next().to_le_bytes()[..chunk.len()] == *chunk)
}

/// What a sector read back contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// All 512 bytes are zero.
    Zeros,
    /// A valid stamp of the expected seed and sector, with this generation.
    Valid(u64),
    /// A valid stamp, but of another sector (misdirected / misplaced data).
    Misplaced { sector: u64, gen: u64 },
    /// A valid stamp of this sector but of another seed (another stream).
    ForeignSeed { seed: u32, gen: u64 },
    /// The magic is there but the CRC (or filler) does not match: torn or
    /// corrupted stamp. The header fields are as read, not trustworthy.
    BadStamp { sector: u64, gen: u64 },
    /// Anything else.
    Garbage,
}

/// Classify the 512 bytes `sec` read from device sector `sector`.
pub fn inspect(sec: &[u8], seed: u32, sector: u64) -> Found {
    if sec.len() != SECTOR_SIZE {
        return Found::Garbage;
    }
    if sec[0..4] == MAGIC {
        let s_sector = le_u64(&sec[8..16]);
        let s_gen = le_u64(&sec[16..24]);
        if le_u32(&sec[24..28]) != stamp_crc(sec) {
            return Found::BadStamp {
                sector: s_sector,
                gen: s_gen,
            };
        }
        let s_seed = le_u32(&sec[4..8]);
        if s_gen == 0 || !filler_matches(sec, s_seed, s_sector, s_gen) {
            return Found::BadStamp {
                sector: s_sector,
                gen: s_gen,
            };
        }
        if s_seed != seed {
            return Found::ForeignSeed {
                seed: s_seed,
                gen: s_gen,
            };
        }
        if s_sector != sector {
            return Found::Misplaced {
                sector: s_sector,
                gen: s_gen,
            };
        }
        return Found::Valid(s_gen);
    }
    if sec.iter().all(|&b| b == 0) {
        Found::Zeros
    } else {
        Found::Garbage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_layout() {
        let mut s = [0u8; SECTOR_SIZE];
        write_stamp(&mut s, 7, 123_456, 42);
        assert_eq!(&s[0..4], b"WBPT");
        assert_eq!(le_u32(&s[4..8]), 7);
        assert_eq!(le_u64(&s[8..16]), 123_456);
        assert_eq!(le_u64(&s[16..24]), 42);
        assert_eq!(le_u32(&s[24..28]), stamp_crc(&s));
        assert_eq!(inspect(&s, 7, 123_456), Found::Valid(42));
        assert_eq!(
            inspect(&s, 8, 123_456),
            Found::ForeignSeed { seed: 7, gen: 42 }
        );
        assert_eq!(
            inspect(&s, 7, 5),
            Found::Misplaced {
                sector: 123_456,
                gen: 42
            }
        );
    }

    #[test]
    fn filler_depends_on_everything() {
        let mut a = [0u8; SECTOR_SIZE];
        let mut b = [0u8; SECTOR_SIZE];
        write_stamp(&mut a, 1, 10, 3);
        write_stamp(&mut b, 1, 10, 4);
        assert_ne!(a[28..], b[28..]);
        write_stamp(&mut b, 1, 11, 3);
        assert_ne!(a[28..], b[28..]);
        write_stamp(&mut b, 2, 10, 3);
        assert_ne!(a[28..], b[28..]);
        write_stamp(&mut b, 1, 10, 3);
        assert_eq!(a, b);
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let mut s = [0u8; SECTOR_SIZE];
        write_stamp(&mut s, 3, 99, 5);
        for i in 0..SECTOR_SIZE {
            let mut t = s;
            t[i] ^= 0x01;
            assert!(
                !matches!(inspect(&t, 3, 99), Found::Valid(_)),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn zeros_and_garbage_and_torn() {
        let z = [0u8; SECTOR_SIZE];
        assert_eq!(inspect(&z, 1, 0), Found::Zeros);
        let mut g = [0u8; SECTOR_SIZE];
        g[300] = 1;
        assert_eq!(inspect(&g, 1, 0), Found::Garbage);
        // Torn: first half of gen 1, second half of gen 2.
        let mut a = [0u8; SECTOR_SIZE];
        let mut b = [0u8; SECTOR_SIZE];
        write_stamp(&mut a, 1, 50, 1);
        write_stamp(&mut b, 1, 50, 2);
        a[256..].copy_from_slice(&b[256..]);
        assert_eq!(inspect(&a, 1, 50), Found::BadStamp { sector: 50, gen: 1 });
        // A stamp claiming generation 0 is never valid.
        let mut c = [0u8; SECTOR_SIZE];
        write_stamp(&mut c, 1, 50, 0);
        assert!(matches!(inspect(&c, 1, 50), Found::BadStamp { .. }));
    }
}
