//! Segment headers: parse / decode / verify on arbitrary bytes (header block
//! then data), with optional fix-ups of magic, version, reserved fields and
//! CRC so the fuzzer reaches deep. A header that parses must be canonical,
//! and a segment whose CRC verifies must re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wbformat::crc32c::{crc32c_raw_update, Crc32c};
use wbformat::format::*;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut seg = vec![0u8; BLOCK_SIZE * 4];
    let n = rest.len().min(seg.len());
    seg[..n].copy_from_slice(&rest[..n]);
    if mode & 1 != 0 {
        seg[..8].copy_from_slice(&SEGMENT_MAGIC);
        seg[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    }
    if mode & 2 != 0 {
        // Keep nr_lines small and clear what must be zero.
        let nr = u32::from(seg[32] % 4);
        seg[32..36].copy_from_slice(&nr.to_le_bytes());
        seg[36..64].fill(0);
        seg[64 + 12 * nr as usize..BLOCK_SIZE].fill(0);
    }
    if mode & 4 != 0 {
        let nr = (u32::from_le_bytes(seg[32..36].try_into().unwrap()) as usize).min(3);
        seg[12..16].fill(0);
        let crc = Crc32c::new();
        let mut c = crc;
        c.update(&seg[..BLOCK_SIZE * (nr + 1)]);
        seg[12..16].copy_from_slice(&c.finish().to_le_bytes());
    }
    let (hb, dat) = seg.split_at(BLOCK_SIZE);
    let fid = u64::from_le_bytes(hb[16..24].try_into().unwrap());
    let id = u64::from_le_bytes(hb[24..32].try_into().unwrap());
    let parsed = parse_segment_header(hb);
    let decoded = decode_segment_header(hb, fid, id);
    match (&parsed, &decoded) {
        (Ok(p), Ok(d)) => assert_eq!(p, d),
        // Format id 0 and id 0 are never valid: decode rejects them, parse
        // does not check the identity.
        (Ok(p), Err(e)) => assert!(
            (matches!(e, SegmentError::WrongId { .. }) && p.id == 0)
                || (matches!(e, SegmentError::WrongFormatId { .. }) && p.format_id == 0),
            "parse ok but decode failed: {e}"
        ),
        // decode checks the identity before the structure.
        (Err(e1), Err(e2)) => assert!(
            e1 == e2
                || *e2
                    == SegmentError::WrongId {
                        expected: id,
                        found: 0
                    }
                || *e2
                    == SegmentError::WrongFormatId {
                        expected: 0,
                        found: 0
                    }
        ),
        (Err(e), Ok(_)) => panic!("decode ok but parse failed: {e}"),
    }
    let Ok(h) = parsed else { return };
    assert!(h.nr_lines <= 255);
    h.validate().unwrap();
    let mut fields = vec![0u8; BLOCK_SIZE];
    if h.id != 0 && h.format_id != 0 {
        encode_segment_header_fields(&h, &mut fields).unwrap();
        assert_eq!(&fields[..12], &hb[..12]);
        assert_eq!(&fields[16..], &hb[16..], "parsed header is not canonical");
    }
    let mut out = SegmentHeader::default();
    let checked = check_segment(hb, dat, fid, id, crc32c_raw_update, &mut out);
    if checked.is_ok() {
        let len = h.nr_lines as usize * BLOCK_SIZE;
        let mut buf = seg[..BLOCK_SIZE + len].to_vec();
        buf[..BLOCK_SIZE].fill(0);
        let crc = encode_segment_buffer(&h, &mut buf, crc32c_raw_update).unwrap();
        assert_eq!(crc, h.checksum);
        assert_eq!(&buf[..], &seg[..BLOCK_SIZE + len]);
        assert_eq!(verify_segment_buffer(&h, &seg, crc32c_raw_update), Ok(()));
    } else if let Err(e) = checked {
        let _ = e.to_string();
    }
    let _ = segment_checksum(hb, dat, crc32c_raw_update);
    let _ = segment_checksum(&hb[..n.min(20)], dat, crc32c_raw_update);
});
