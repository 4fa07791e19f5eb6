//! decode_superblock on arbitrary blocks. The first input byte chooses
//! whether the CRC is fixed up first (so the fuzzer gets past it). A block
//! that decodes must be canonical: encoding the result gives it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbformat::crc32c::crc32c;
use wbformat::format::*;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut block = vec![0u8; BLOCK_SIZE];
    let n = rest.len().min(BLOCK_SIZE);
    block[..n].copy_from_slice(&rest[..n]);
    if mode & 1 != 0 {
        block[..8].copy_from_slice(&SUPERBLOCK_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    }
    if mode & 2 != 0 {
        block[12..16].fill(0);
        let crc = crc32c(&block);
        block[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let _ = decode_superblock(&rest[..n]);
    if let Ok(sb) = decode_superblock(&block) {
        let mut out = vec![0u8; BLOCK_SIZE];
        encode_superblock(&sb, &mut out).unwrap();
        assert_eq!(out, block, "decoded superblock is not canonical");
        let g = sb.geometry();
        assert_eq!(u64::from(g.nr_segments()), sb.nr_segments());
        let _ = check_device_size(&sb, u64::from_le_bytes(block[100..108].try_into().unwrap()));
    } else if let Err(e) = decode_superblock(&block) {
        let _ = e.to_string();
    }
});
