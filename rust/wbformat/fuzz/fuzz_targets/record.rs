//! decode_record / select_record on arbitrary blocks, with optional CRC
//! fix-up. A record that decodes must be canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbformat::crc32c::crc32c;
use wbformat::format::*;

fn fix(block: &mut [u8], mode: u8) {
    if mode & 1 != 0 {
        block[..8].copy_from_slice(&RECORD_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    }
    if mode & 2 != 0 {
        block[12..16].fill(0);
        let crc = crc32c(block);
        block[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut a = vec![0u8; BLOCK_SIZE];
    let mut b = vec![0u8; BLOCK_SIZE];
    // Inputs are mostly sparse: spread them as (offset, byte) patches too.
    let n = rest.len().min(BLOCK_SIZE);
    a[..n].copy_from_slice(&rest[..n]);
    for p in rest.chunks_exact(3).take(64) {
        let off = usize::from(u16::from_le_bytes([p[0], p[1]])) % BLOCK_SIZE;
        b[off] = p[2];
    }
    fix(&mut a, mode);
    fix(&mut b, mode >> 2);
    for blk in [&a, &b] {
        match decode_record(blk) {
            Ok(r) => {
                let mut out = vec![0u8; BLOCK_SIZE];
                encode_record(&r, &mut out).unwrap();
                assert_eq!(&out, blk, "decoded record is not canonical");
                for id in 0..=255u8 {
                    assert_eq!(r.registered(id).is_some(), r.registered_set().contains(id));
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    let fid = u64::from_le_bytes(a[16..24].try_into().unwrap());
    match select_record(&a, &b, fid) {
        Ok(c) => {
            assert_eq!(c.record.format_id, fid);
            assert_eq!(c.record.slot(), c.slot);
            if let Ok(g) = c.other {
                assert!(g <= c.record.generation);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
