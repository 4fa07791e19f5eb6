//! Deterministic corruption tests over valid images built in memory: every
//! corruption gives the documented error variant.

mod common;

use common::*;
use wbformat::format::*;
use wbformat::index::Key;
use wbformat::recovery::*;

/// Recomputes the CRC of a metadata block (superblock or record).
fn fix_crc(b: &mut [u8]) {
    b[12..16].fill(0);
    let crc = wbformat::crc32c::crc32c(&b[..BLOCK_SIZE]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn superblock_block() -> (Vec<u8>, Superblock) {
    let sb = Superblock::new(64 * 2048 + 5, 0xabcdef, 42).unwrap();
    let mut b = vec![0u8; BLOCK_SIZE];
    encode_superblock(&sb, &mut b).unwrap();
    (b, sb)
}

#[test]
fn superblock_every_bit_flip() {
    let (b, _) = superblock_block();
    for off in 0..BLOCK_SIZE {
        let bits: &[u8] = if off < 64 {
            &[0, 1, 2, 3, 4, 5, 6, 7]
        } else {
            &[(off % 8) as u8]
        };
        for &bit in bits {
            let mut c = b.clone();
            c[off] ^= 1 << bit;
            let r = decode_superblock(&c);
            match off {
                0..=7 => assert_eq!(r, Err(SuperblockError::BadMagic), "offset {off}"),
                // Version 5 with one bit flipped: 2 to 4 would be a version
                // this code reads (then the CRC catches the flip), the
                // others are not.
                8..=11 => match SUPERBLOCK_VERSION ^ (1 << (bit + 8 * (off as u8 - 8))) {
                    SUPERBLOCK_VERSION_V2 | SUPERBLOCK_VERSION_V3 | SUPERBLOCK_VERSION_V4 => assert!(
                        matches!(r, Err(SuperblockError::BadChecksum { .. })),
                        "offset {off}: {r:?}"
                    ),
                    v => assert_eq!(r, Err(SuperblockError::UnsupportedVersion(v))),
                },
                _ => assert!(
                    matches!(r, Err(SuperblockError::BadChecksum { .. })),
                    "offset {off}: {r:?}"
                ),
            }
        }
    }
}

#[test]
fn superblock_field_violations() {
    let (b, sb) = superblock_block();
    let check = |f: &dyn Fn(&mut Vec<u8>), expect: SuperblockError| {
        let mut c = b.clone();
        f(&mut c);
        fix_crc(&mut c);
        assert_eq!(decode_superblock(&c), Err(expect));
    };
    check(&|c| put32(c, 8, 6), SuperblockError::UnsupportedVersion(6));
    check(&|c| put32(c, 8, 1), SuperblockError::UnsupportedVersion(1));
    check(&|c| put32(c, 8, 0), SuperblockError::UnsupportedVersion(0));
    // Version 3: bytes 28..32 are the log horizon, 1..=MAX_LOG_HORIZON.
    assert_eq!(sb.version(), SUPERBLOCK_VERSION);
    assert_eq!(sb.log_horizon(), LOG_HORIZON);
    check(&|c| put32(c, 28, 0), SuperblockError::BadLogHorizon(0));
    check(
        &|c| put32(c, 28, MAX_LOG_HORIZON + 1),
        SuperblockError::BadLogHorizon(MAX_LOG_HORIZON + 1),
    );
    // Version 2: the same bytes are reserved.
    for off in 28..32 {
        check(
            &|c| {
                put32(c, 8, SUPERBLOCK_VERSION_V2);
                put32(c, 28, 0);
                c[off] = 0x10;
            },
            SuperblockError::NonZeroReserved { offset: off },
        );
    }
    let geo = |bs, ss, l| SuperblockError::BadGeometry {
        block_size: bs,
        segment_sectors: ss,
        lines_per_segment: l,
    };
    check(&|c| put32(c, 16, 512), geo(512, 2048, 255));
    check(&|c| put32(c, 20, 4096), geo(4096, 4096, 255));
    check(&|c| put32(c, 24, 511), geo(4096, 2048, 511));
    assert_eq!(sb.nr_segments(), 63);
    check(
        &|c| put64(c, 32, 62),
        SuperblockError::InconsistentSize {
            nr_segments: 62,
            device_sectors: 64 * 2048 + 5,
        },
    );
    check(
        &|c| put64(c, 32, 64),
        SuperblockError::InconsistentSize {
            nr_segments: 64,
            device_sectors: 64 * 2048 + 5,
        },
    );
    check(
        &|c| put64(c, 40, 64 * 2048 - 1),
        SuperblockError::InconsistentSize {
            nr_segments: 63,
            device_sectors: 64 * 2048 - 1,
        },
    );
    check(
        &|c| {
            put64(c, 32, 1);
            put64(c, 40, 2 * 2048);
        },
        SuperblockError::InconsistentSize {
            nr_segments: 1,
            device_sectors: 2 * 2048,
        },
    );
    check(
        &|c| {
            put64(c, 32, MAX_SEGMENTS + 1);
            put64(c, 40, (MAX_SEGMENTS + 2) * 2048);
        },
        SuperblockError::TooLarge {
            nr_segments: MAX_SEGMENTS + 1,
        },
    );
    check(&|c| put64(c, 48, 0), SuperblockError::ZeroFormatId);
    for off in 64..BLOCK_SIZE {
        check(
            &|c| c[off] = 0x10,
            SuperblockError::NonZeroReserved { offset: off },
        );
    }
    assert_eq!(
        decode_superblock(&b[..4095]),
        Err(SuperblockError::Truncated { found: 4095 })
    );
    assert_eq!(
        decode_superblock(&[0u8; 4096]),
        Err(SuperblockError::BadMagic)
    );
    // A larger buffer is fine: only the first block counts.
    let mut big = b.clone();
    big.extend_from_slice(&[0xff; 100]);
    assert_eq!(decode_superblock(&big), Ok(sb));
    assert_eq!(
        check_device_size(&sb, 64 * 2048),
        Err(SuperblockError::DeviceShrunk {
            formatted: 64 * 2048 + 5,
            actual: 64 * 2048
        })
    );
}

fn record_block() -> (Vec<u8>, Record) {
    let mut r = Record::new(0xabcdef);
    r.generation = 6;
    r.last_migrated_segment_id = 77;
    r.register(1, 1000).unwrap();
    r.register(127, 1 << 40).unwrap();
    let mut b = vec![0u8; BLOCK_SIZE];
    encode_record(&r, &mut b).unwrap();
    (b, r)
}

#[test]
fn record_every_bit_flip() {
    let (b, _) = record_block();
    for off in 0..BLOCK_SIZE {
        let mut c = b.clone();
        let bit = (off * 5 % 8) as u8;
        c[off] ^= 1 << bit;
        let r = decode_record(&c);
        match off {
            0..=7 => assert_eq!(r, Err(RecordError::BadMagic)),
            8..=11 => assert!(matches!(r, Err(RecordError::UnsupportedVersion(_)))),
            _ => assert!(
                matches!(r, Err(RecordError::BadChecksum { .. })),
                "offset {off}: {r:?}"
            ),
        }
    }
}

#[test]
fn record_field_violations() {
    let (b, r) = record_block();
    let check = |f: &dyn Fn(&mut Vec<u8>), expect: RecordError| {
        let mut c = b.clone();
        f(&mut c);
        fix_crc(&mut c);
        assert_eq!(decode_record(&c), Err(expect));
    };
    check(&|c| put32(c, 8, 7), RecordError::UnsupportedVersion(7));
    check(&|c| put64(c, 16, 0), RecordError::ZeroFormatId);
    for off in (40..64).chain(3136..BLOCK_SIZE) {
        check(
            &|c| c[off] = 1,
            RecordError::NonZeroReserved { offset: off },
        );
    }
    let entry = |i: usize| 64 + 16 * i;
    let bad = |d: u8, fault| RecordError::BadRegistryEntry {
        device_id: d,
        fault,
    };
    for off in entry(0)..entry(1) {
        check(&|c| c[off] = 1, bad(0, RegistryEntryFault::EntryZeroUsed));
    }
    // Registered flag without a size, a size without the flag.
    check(
        &|c| put32(c, entry(5) + 8, 1),
        bad(5, RegistryEntryFault::FlagMismatch),
    );
    check(
        &|c| put64(c, entry(5), 99),
        bad(5, RegistryEntryFault::FlagMismatch),
    );
    check(
        &|c| put64(c, entry(1), 0),
        bad(1, RegistryEntryFault::FlagMismatch),
    );
    check(
        &|c| put32(c, entry(1) + 8, 3),
        bad(1, RegistryEntryFault::ReservedFlags),
    );
    check(
        &|c| put32(c, entry(9) + 8, 0x8000_0000),
        bad(9, RegistryEntryFault::ReservedFlags),
    );
    check(
        &|c| put32(c, entry(127) + 12, 1),
        bad(127, RegistryEntryFault::NonZeroReserved),
    );
    // Backing identities (2112 + 8*i): only for registered ids.
    let ident = |i: usize| 2112 + 8 * i;
    for off in ident(0)..ident(1) {
        check(&|c| c[off] = 1, bad(0, RegistryEntryFault::EntryZeroUsed));
    }
    check(
        &|c| put64(c, ident(5), 42),
        bad(5, RegistryEntryFault::IdentityUnregistered),
    );
    assert_eq!(
        decode_record(&b[..100]),
        Err(RecordError::Truncated { found: 100 })
    );
    assert_eq!(decode_record(&b), Ok(r));
}

#[test]
fn record_selection_errors() {
    let (b, r) = record_block(); // generation 6: slot 0
    let zero = vec![0u8; BLOCK_SIZE];
    assert_eq!(select_record(&b, &zero, r.format_id).unwrap().record, r);
    assert_eq!(
        select_record(&zero, &b, r.format_id),
        Err(NoValidRecord {
            slot0: RecordError::BadMagic,
            slot1: RecordError::WrongSlot {
                generation: 6,
                slot: 1
            }
        })
    );
    assert_eq!(
        select_record(&b, &zero, 5),
        Err(NoValidRecord {
            slot0: RecordError::WrongFormatId {
                expected: 5,
                found: r.format_id
            },
            slot1: RecordError::BadMagic
        })
    );
    let mut torn = b.clone();
    torn[3000] = 9;
    let e = select_record(&torn, &zero, r.format_id).unwrap_err();
    assert!(matches!(e.slot0, RecordError::BadChecksum { .. }));
    assert!(e.to_string().contains("slot 0") && e.to_string().contains("slot 1"));
}

/// A segment of 3 lines, as bytes, plus its header.
fn three_line_segment(id: u64) -> (Vec<u8>, SegmentHeader) {
    let lines = [mb(1, 10, 0xff), mb(2, 1 << 50, 0x0f), mb(127, 0, 0x80)];
    let bytes = segment_bytes(FORMAT_ID, id, &lines);
    let h = decode_segment_header(&bytes, FORMAT_ID, id).unwrap();
    (bytes, h)
}

/// The same three lines in a version 3 header, line 0 clean.
fn three_line_segment_v3(id: u64) -> (Vec<u8>, SegmentHeader) {
    let mut clean = mb(1, 10, 0xff);
    clean.flags = METABLOCK_CLEAN;
    let lines = [clean, mb(2, 1 << 50, 0x0f), mb(127, 0, 0x80)];
    let bytes = segment_bytes_version(FORMAT_ID, id, &lines, SEGMENT_VERSION_V3);
    let h = decode_segment_header(&bytes, FORMAT_ID, id).unwrap();
    assert_eq!(h.version, SEGMENT_VERSION_V3);
    assert!(h.lines()[0].is_clean() && !h.lines()[1].is_clean());
    (bytes, h)
}

/// Decode + CRC check, as recovery does it.
/// `bytes` is padded with zeros to a whole segment, as if read from the slot.
fn check_bytes(bytes: &[u8], id: u64) -> Result<SegmentHeader, SegmentError> {
    let mut h = SegmentHeader::default();
    let mut seg = bytes.to_vec();
    seg.resize(BLOCK_SIZE * BLOCKS_PER_SEGMENT, 0);
    check_segment(
        &seg[..BLOCK_SIZE],
        &seg[BLOCK_SIZE..],
        FORMAT_ID,
        id,
        default_sum(),
        &mut h,
    )?;
    Ok(h)
}

/// The error the spec requires when bit `bit` of byte `off` of the header of
/// `three_line_segment(id)` is flipped.
fn expected_header_flip(orig: &[u8], off: usize, bit: u8, id: u64) -> SegmentError {
    let mut c = orig.to_vec();
    c[off] ^= 1 << bit;
    let u32_at = |o: usize| u32::from_le_bytes(c[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(c[o..o + 8].try_into().unwrap());
    let checksum = || SegmentError::BadChecksum {
        stored: 0,
        computed: 0,
    };
    match off {
        0..=7 => SegmentError::BadMagic,
        8..=11 => match u32_at(8) {
            // Version 2 <-> 3: the other layout of bytes 10..12.
            3 => checksum(),
            2 if c[64 + 10] != 0 => SegmentError::BadMetablock {
                index: 0,
                reason: MetablockFault::NonZeroReserved,
            },
            2 => checksum(),
            v => SegmentError::UnsupportedVersion(v),
        },
        12..=15 => checksum(),
        16..=23 => SegmentError::WrongFormatId {
            expected: FORMAT_ID,
            found: u64_at(16),
        },
        24..=31 => SegmentError::WrongId {
            expected: id,
            found: u64_at(24),
        },
        32..=35 => {
            let n = u32_at(32);
            if n > 255 {
                SegmentError::TooManyLines(n)
            } else if n < 3 {
                SegmentError::BadMetablock {
                    index: n,
                    reason: MetablockFault::UnusedNotZero,
                }
            } else {
                // Entries 3..n are zero: a valid header, caught by the CRC.
                checksum()
            }
        }
        // durable_upto: any value is valid, the CRC catches it.
        36..=43 => checksum(),
        44..=47 => {
            let n = u32_at(44);
            if n as usize > MAX_DISCARDS {
                SegmentError::TooManyDiscards(n)
            } else {
                SegmentError::BadDiscard {
                    index: 0,
                    reason: MetablockFault::InvalidDeviceId(0),
                }
            }
        }
        48..=63 => SegmentError::NonZeroReserved { offset: off },
        64..=3123 => {
            let k = ((off - 64) / 12) as u32;
            let field = (off - 64) % 12;
            if k >= 3 {
                return SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::UnusedNotZero,
                };
            }
            let base = 64 + 12 * k as usize;
            let sector = u64_at(base);
            let dev = c[base + 8];
            let dirty = c[base + 9];
            let flags = c[base + 10];
            let v3 = u32_at(8) == SEGMENT_VERSION_V3;
            match field {
                10 | 11 if !v3 => SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::NonZeroReserved,
                },
                11 => SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::NonZeroReserved,
                },
                _ if v3 && (flags & !METABLOCK_CLEAN != 0 || (flags & METABLOCK_CLEAN != 0 && dirty != 0xff)) => {
                    SegmentError::BadMetablock {
                        index: k,
                        reason: MetablockFault::BadFlags(flags),
                    }
                }
                _ if dirty != 0 && (dev == 0 || dev > 127) => SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::InvalidDeviceId(dev),
                },
                _ if dirty != 0 && sector % 8 != 0 => SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::UnalignedSector(sector),
                },
                _ => checksum(),
            }
        }
        3124..=4083 => SegmentError::BadDiscard {
            index: ((off - 3124) / 16) as u32,
            reason: MetablockFault::UnusedNotZero,
        },
        _ => SegmentError::NonZeroReserved { offset: off },
    }
}

fn same_kind(a: &SegmentError, b: &SegmentError) -> bool {
    match (a, b) {
        (SegmentError::BadChecksum { .. }, SegmentError::BadChecksum { .. }) => true,
        _ => a == b,
    }
}

#[test]
fn segment_header_every_bit_flip() {
    every_bit_flip(three_line_segment(1234).0, 1234);
}

/// The same over a version 3 header with a clean line: bad flags, a clean
/// line losing a sector, flags in a version 2 header are all caught.
#[test]
fn segment_header_v3_every_bit_flip() {
    every_bit_flip(three_line_segment_v3(1234).0, 1234);
}

fn every_bit_flip(bytes: Vec<u8>, id: u64) {
    assert!(check_bytes(&bytes, id).is_ok());
    for off in 0..BLOCK_SIZE {
        for bit in 0..8u8 {
            let mut c = bytes.clone();
            c[off] ^= 1 << bit;
            let got = check_bytes(&c, id).unwrap_err();
            let want = expected_header_flip(&bytes, off, bit, id);
            assert!(
                same_kind(&got, &want),
                "offset {off} bit {bit}: got {got:?}, want {want:?}"
            );
            if let SegmentError::BadChecksum { stored, computed } = got {
                assert_ne!(stored, computed);
            }
        }
    }
}

#[test]
fn segment_data_every_sector_torn() {
    let id = 9;
    let (bytes, _) = three_line_segment(id);
    for sector in 8..bytes.len() / SECTOR_SIZE {
        // The sector was never written: it still holds older content.
        let mut c = bytes.clone();
        c[sector * SECTOR_SIZE..(sector + 1) * SECTOR_SIZE].fill(0);
        assert!(
            matches!(check_bytes(&c, id), Err(SegmentError::BadChecksum { .. })),
            "sector {sector}"
        );
        let mut c = bytes.clone();
        c[sector * SECTOR_SIZE + 77] ^= 0x01;
        assert!(matches!(
            check_bytes(&c, id),
            Err(SegmentError::BadChecksum { .. })
        ));
    }
    // Missing data blocks.
    let short = &bytes[..bytes.len() - BLOCK_SIZE];
    let mut h = SegmentHeader::default();
    assert_eq!(
        check_segment(
            &short[..BLOCK_SIZE],
            &short[BLOCK_SIZE..],
            FORMAT_ID,
            id,
            default_sum(),
            &mut h
        ),
        Err(SegmentError::Truncated {
            needed: 3 * BLOCK_SIZE,
            found: 2 * BLOCK_SIZE
        })
    );
    assert_eq!(
        decode_segment_header(&bytes[..4000], FORMAT_ID, id),
        Err(SegmentError::Truncated {
            needed: BLOCK_SIZE,
            found: 4000
        })
    );
}

#[test]
fn segment_identity_errors() {
    let (bytes, _) = three_line_segment(50);
    assert_eq!(
        decode_segment_header(&bytes, FORMAT_ID, 51),
        Err(SegmentError::WrongId {
            expected: 51,
            found: 50
        })
    );
    assert_eq!(
        decode_segment_header(&bytes, FORMAT_ID ^ 4, 50),
        Err(SegmentError::WrongFormatId {
            expected: FORMAT_ID ^ 4,
            found: FORMAT_ID
        })
    );
    assert_eq!(
        decode_segment_header(&[0u8; BLOCK_SIZE], FORMAT_ID, 50),
        Err(SegmentError::BadMagic)
    );
    // A header whose id field is zero (valid otherwise).
    let mut z = bytes.clone();
    z[24..32].fill(0);
    assert_eq!(
        decode_segment_header(&z, FORMAT_ID, 50),
        Err(SegmentError::WrongId {
            expected: 50,
            found: 0
        })
    );
    assert_eq!(
        decode_segment_header(&z, FORMAT_ID, 0),
        Err(SegmentError::WrongId {
            expected: 0,
            found: 0
        })
    );
    // Inspection tools can still parse it.
    assert_eq!(parse_segment_header(&z).unwrap().id, 0);
}

fn lines_of(n: u64, dev: u8) -> Vec<Metablock> {
    (0..n).map(|i| mb(dev, i, 0xff)).collect()
}

#[test]
fn log_end_reasons_on_images() {
    // 4 slots; ids 1..=6 written; 1 and 2 migrated: log 3..=6 fills the ring.
    let mut img = Image::format(4, 0);
    for id in 1..=6 {
        img.write_segment(id, &lines_of(id, 1));
    }
    img.update_record(|r| {
        r.last_migrated_segment_id = 2;
        r.register(1, 1 << 20).unwrap();
    });
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.replayed, 4);
    assert_eq!(rec.summary.end, LogEnd::RingFull);
    assert_eq!(rec.summary.last_valid_id, 6);
    assert_eq!(rec.summary.next_id, 7);
    assert!(!img.geometry().may_write(7, 2));

    // Migrated up to 3: id 7 would be expected in slot 2, which holds id 3
    // from the previous lap.
    img.update_record(|r| r.last_migrated_segment_id = 3);
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.replayed, 3);
    assert_eq!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 7,
            slot: 2,
            error: SegmentError::WrongId {
                expected: 7,
                found: 3
            }
        }
    );
    assert!(img.geometry().may_write(7, 3));

    // Segment 7 torn: one data sector not written.
    let bytes = segment_bytes(FORMAT_ID, 7, &lines_of(5, 1));
    let start = img.segment_start(7);
    img.disk.write_partial(start, &bytes, |i| i != 8 * 3 + 2);
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.last_valid_id, 6);
    assert!(matches!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 7,
            error: SegmentError::BadChecksum { .. },
            ..
        }
    ));

    // Segment 7 torn in its header: only the first header sector written,
    // the others still hold the header of id 3 (both have 100 lines, so the
    // metablocks span 3 sectors).
    let old: Vec<Metablock> = (0..100).map(|i| mb(2, 1000 + i, 0x3c)).collect();
    img.write_segment(3, &old);
    let bytes = segment_bytes(FORMAT_ID, 7, &lines_of(100, 1));
    img.disk.write_partial(start, &bytes, |i| i == 0 || i >= 8);
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.last_valid_id, 6);
    assert!(
        matches!(rec.summary.end, LogEnd::Invalid { id: 7, .. }),
        "{:?}",
        rec.summary.end
    );

    // Segment 7 complete.
    img.disk.write(start, &bytes);
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.last_valid_id, 7);

    // A zeroed header ends the log.
    img.disk.write(img.segment_start(5), &[0u8; BLOCK_SIZE]);
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.last_valid_id, 4);
    assert_eq!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 5,
            slot: 0,
            error: SegmentError::BadMagic
        }
    );

    // Wrong checksum field.
    let mut s5 = segment_bytes(FORMAT_ID, 5, &lines_of(2, 1));
    s5[12] ^= 0xff;
    img.disk.write(img.segment_start(5), &s5);
    let rec = recover(&img.disk).unwrap();
    assert!(matches!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 5,
            error: SegmentError::BadChecksum { .. },
            ..
        }
    ));

    // A segment of another format (old content from before a re-format).
    let s5 = segment_bytes(FORMAT_ID + 1, 5, &lines_of(2, 1));
    img.disk.write(img.segment_start(5), &s5);
    let rec = recover(&img.disk).unwrap();
    assert!(matches!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 5,
            error: SegmentError::WrongFormatId { .. },
            ..
        }
    ));
}

#[test]
fn ids_going_backwards_end_the_log() {
    let mut img = Image::format(5, 0);
    for id in 1..=3 {
        img.write_segment(id, &lines_of(2, 1));
    }
    // Slot of id 4 holds a segment claiming id 2 (a bug or garbage).
    let s = segment_bytes(FORMAT_ID, 2, &lines_of(2, 1));
    img.disk.write(img.segment_start(4), &s);
    img.write_segment(5, &lines_of(2, 1));
    img.update_record(|r| r.register(1, 100).unwrap());
    let rec = recover(&img.disk).unwrap();
    assert_eq!(rec.summary.last_valid_id, 3);
    assert_eq!(
        rec.summary.end,
        LogEnd::Invalid {
            id: 4,
            slot: 3,
            error: SegmentError::WrongId {
                expected: 4,
                found: 2
            }
        }
    );
}

#[test]
fn image_level_errors() {
    let mut img = Image::format(3, 0);
    img.write_segment(1, &lines_of(2, 9));
    // Device 9 owns dirty data but is not registered.
    let rec = recover(&img.disk).unwrap();
    let owners = rec.counts.owners();
    assert_eq!(owners.iter().collect::<Vec<_>>(), vec![9]);
    let e = check_registry(&owners, &rec.record).unwrap_err();
    let mut want = DeviceSet::EMPTY;
    want.insert(9);
    assert_eq!(e, RegistryError::Unregistered { devices: want });
    assert!(e.to_string().contains("9"));
    img.update_record(|r| r.register(9, 4096).unwrap());
    let rec = recover(&img.disk).unwrap();
    assert_eq!(check_registry(&rec.counts.owners(), &rec.record), Ok(()));
    assert_eq!(rec.record.check_device(9, 4096), Ok(()));
    assert_eq!(
        rec.record.check_device(9, 4095),
        Err(RegistryError::SizeMismatch {
            device_id: 9,
            registered: 4096,
            actual: 4095
        })
    );
    assert_eq!(
        rec.record.check_device(8, 1),
        Err(RegistryError::NotRegistered { device_id: 8 })
    );
    assert_eq!(
        rec.record.check_device(0, 1),
        Err(RegistryError::InvalidDeviceId(0))
    );

    // Truncated device.
    let mut small = img.disk.clone();
    small.nr_sectors -= 1;
    assert!(recover(&small).err().unwrap().contains("shrank"));
    // Both records torn.
    let mut d = img.disk.clone();
    d.write(8, &[1u8; BLOCK_SIZE]);
    d.write(16, &[0u8; BLOCK_SIZE]);
    assert!(recover(&d).err().unwrap().contains("no valid record"));
    // Unreadable log: an I/O error aborts recovery instead of ending the log.
    let mut d = img.disk.clone();
    d.nr_sectors = 2048 + 8; // header readable, data not
    let sb_ok = decode_superblock(&d.block(0)).unwrap();
    let g = sb_ok.geometry();
    let mut ix = new_index(&g);
    let mut counts = DirtyCounts::new();
    let mut h = SegmentHeader::default();
    let mut buf = vec![0u8; 1 << 20];
    let r = replay_log(
        &g,
        FORMAT_ID,
        0,
        default_sum(),
        &mut ix,
        &mut counts,
        &mut h,
        &mut buf,
        |s, b| d.read(s, b),
    );
    assert!(matches!(r, Err(ReplayError::Io(_))));
    let r = replay_log(
        &g,
        FORMAT_ID,
        0,
        default_sum(),
        &mut ix,
        &mut counts,
        &mut h,
        &mut buf[..100],
        |s, b| d.read(s, b),
    );
    assert!(matches!(
        r,
        Err(ReplayError::Recovery(RecoveryError::BufferTooSmall { .. }))
    ));
}

#[test]
fn superseded_lines_become_clean_on_replay() {
    // The 2013 bug: replay left superseded copies dirty.
    let mut img = Image::format(4, 0);
    img.write_segment(1, &[mb(1, 7, 0xff), mb(1, 8, 0x0f)]);
    img.write_segment(2, &[mb(1, 7, 0xff), mb(1, 8, 0x03)]);
    img.write_segment(3, &[mb(1, 8, 0x0c)]);
    img.update_record(|r| r.register(1, 1 << 20).unwrap());
    let rec = recover(&img.disk).unwrap();
    let g = img.geometry();
    let l = |id: u64, k| g.line_index(g.slot_of_id(id).unwrap(), k).unwrap();
    assert_eq!(rec.index.dirty(l(1, 0)), Ok(0));
    assert_eq!(rec.index.dirty(l(1, 1)), Ok(0));
    assert_eq!(rec.index.dirty(l(2, 0)), Ok(0xff));
    assert_eq!(rec.index.dirty(l(2, 1)), Ok(0x03));
    assert_eq!(rec.index.dirty(l(3, 0)), Ok(0x0c));
    assert_eq!(rec.counts.get(1), 3);
    assert_eq!(rec.summary.lines_superseded, 2);
    assert_eq!(rec.index.check_consistency(), Ok(3));
    assert_eq!(rec.index.read_run(Key::new(1, 8), 0, 8), (Some(l(2, 1)), 2));
    assert_eq!(rec.index.read_run(Key::new(1, 8), 2, 8), (Some(l(3, 0)), 2));
    assert_eq!(rec.index.read_run(Key::new(1, 8), 4, 8), (None, 4));
}

#[test]
fn log_scan_api() {
    let g = Geometry::from_nr_segments(3).unwrap();
    let mut s = LogScan::new(g, 10);
    let c = s.next_candidate().unwrap();
    assert_eq!(
        c,
        Candidate {
            id: 11,
            slot: 1,
            start_sector: 4096
        }
    );
    let h = SegmentHeader::new(1, 12);
    assert_eq!(
        s.accept(&h),
        Err(RecoveryError::UnexpectedId {
            expected: 11,
            found: 12
        })
    );
    s.accept(&SegmentHeader::new(1, 11)).unwrap();
    assert_eq!(s.next_candidate().map(|c| (c.id, c.slot)), Some((12, 2)));
    s.stop(SegmentError::BadMagic);
    assert!(s.is_finished());
    assert_eq!(s.next_candidate(), None);
    assert_eq!(
        s.accept(&SegmentHeader::new(1, 12)),
        Err(RecoveryError::ScanFinished)
    );
    assert_eq!(s.last_valid_id(), 11);
    assert_eq!(s.next_id(), 12);
    assert_eq!(s.replayed(), 1);
    assert_eq!(
        s.end(),
        Some(LogEnd::Invalid {
            id: 12,
            slot: 2,
            error: SegmentError::BadMagic
        })
    );
    assert!(s.end().unwrap().to_string().contains("segment 12"));
    // Past the end: ids 13 ..= 10 + 3, i.e. just 13 (slot 0).
    let beyond: Vec<_> = s.beyond_end().map(|c| (c.id, c.slot)).collect();
    assert_eq!(beyond, vec![(13, 0)]);

    // A full ring has nothing past its end; an unfinished walk neither.
    let mut full = LogScan::new(g, 0);
    assert_eq!(full.beyond_end().count(), 0);
    for id in 1..=3 {
        assert_eq!(full.next_candidate().map(|c| c.id), Some(id));
        full.accept(&SegmentHeader::new(1, id)).unwrap();
    }
    assert_eq!(full.next_candidate(), None);
    assert_eq!(full.end(), Some(LogEnd::RingFull));
    assert_eq!(full.beyond_end().count(), 0);
    assert_eq!(full.next_id(), 4);
    assert!(!g.may_write(4, 0) && g.may_write(4, 1));
    // An empty log: everything after the first id is "beyond".
    let mut empty = LogScan::new(g, 7);
    empty.next_candidate();
    empty.stop(SegmentError::BadMagic);
    assert_eq!(
        empty.beyond_end().map(|c| c.id).collect::<Vec<_>>(),
        vec![9, 10]
    );
}

// ---------------------------------------------------------------------------
// Resume past the end of the log: the log horizon.

/// A cache of `n` slots with segments `1..=live` written as a writer keeping
/// horizon `h` would (each durable when the next was written: `durable_upto
/// = id - 1`).
fn horizon_image(n: u64, h: u32, live: u64) -> Image {
    let mut img = Image::format_with_horizon(n, h);
    img.update_record(|r| r.register(1, 1 << 30).unwrap());
    for id in 1..=live {
        img.write_segment_durable(id, id - 1, &[mb(1, id, 0xff)]);
    }
    img
}

/// A short log on a large cache: resume reads the live log, its end and
/// `log_horizon` headers past it, not every slot; a version 2 superblock
/// (no horizon, as older versions formatted) still reads every slot.
#[test]
fn resume_reads_the_live_log_and_the_horizon() {
    let n = 4096;
    let mut img = horizon_image(n, LOG_HORIZON, 5);
    let s = img.resume(None, false).unwrap();
    assert_eq!((s.replayed, s.last_valid, s.invalidated, s.full_scan), (5, 5, 0, false));
    assert_eq!(s.headers_read, 5 + 1 + u64::from(LOG_HORIZON));
    // An empty log: the end and the horizon.
    let mut empty = horizon_image(n, LOG_HORIZON, 0);
    assert_eq!(empty.resume(None, false).unwrap().headers_read, 1 + u64::from(LOG_HORIZON));
    // Version 2: the whole ring window past the end, as before.
    let mut v2 = horizon_image(n, 0, 5);
    let s = v2.resume(None, false).unwrap();
    assert!(s.full_scan);
    assert_eq!(s.headers_read, n);
    // accept_data_loss reads every slot too.
    let mut img = horizon_image(n, LOG_HORIZON, 5);
    let s = img.resume(None, true).unwrap();
    assert!(s.full_scan);
    assert_eq!(s.headers_read, n);
}

/// Stale segments past a torn end (a volatile disk cache persisted later
/// writes but not the end) are all within the horizon of one another and
/// are all invalidated, however many there are, as the full scan does.
#[test]
fn resume_invalidates_stale_segments_within_the_horizon() {
    let h = 4u32;
    let n = 256;
    let mut img = horizon_image(n, h, 10);
    // Segment 11 torn (its header reached the disk, its data did not); 12
    // and 14, written while 10 was the last durable one, persisted. (A
    // writer keeping horizon 4 writes 15 only once 11 is durable: stale
    // segments of a torn tail are less than the horizon past the end.)
    let s11 = img.segment_start(11);
    let torn = segment_bytes_durable(FORMAT_ID, 11, 10, &[mb(1, 11, 0xff)]);
    img.disk.write(s11, &torn[..BLOCK_SIZE]);
    img.write_segment_durable(12, 10, &[mb(1, 12, 0xff)]);
    img.write_segment_durable(14, 10, &[mb(1, 14, 0xff)]);
    let before = img.disk.clone();
    let s = img.resume(None, false).unwrap();
    assert_eq!((s.last_valid, s.invalidated, s.torn_end, s.full_scan), (10, 2, true, false));
    // The log and its end (1..=11), 12..=14, then 15..=18 (four past 14).
    assert_eq!(s.headers_read, 11 + 7);
    assert!(!img.holds(11) && !img.holds(12) && !img.holds(14));
    // The same as the full scan of the version-2 rule.
    // (The superblock stays version 4: its segments are xxh64-checksummed.)
    let mut full = Image { disk: before, sb: img.sb, record: img.record };
    let f = full.resume(Some(0), false).unwrap();
    assert_eq!((f.last_valid, f.invalidated, f.torn_end, f.full_scan), (10, 2, true, true));
    assert_eq!(f.headers_read, n);
}

/// A later valid segment that says the end segment was durable proves the
/// end is lost data: resume refuses and names both, as with the full scan,
/// whether the proof is just past the end or reached through a run of
/// valid segments, each within the horizon of the previous one.
#[test]
fn resume_refuses_a_proven_loss_within_the_horizon() {
    let h = 4u32;
    for proof in [7u64, 9, 40] {
        // 1..=5 fine, 6 durable then corrupted; segments 7.. written as a
        // writer keeping the horizon does, all durable up to `proof`.
        let mut img = horizon_image(256, h, proof);
        let s6 = img.segment_start(6);
        let mut b = img.disk.read_vec(s6 + 8, SECTOR_SIZE);
        b[0] ^= 1;
        img.disk.write(s6 + 8, &b);
        // Between 6 and the proof: torn writes that never were durable
        // (the proof then says only 6 was).
        for id in 7..proof {
            if id + u64::from(h) > proof {
                img.disk.write(img.segment_start(id), &[0u8; BLOCK_SIZE]);
            }
        }
        if proof < 6 + u64::from(h) {
            img.write_segment_durable(proof, 6, &[mb(1, proof, 0xff)]);
        }
        let want = if proof < 6 + u64::from(h) { proof } else { 7 };
        let before = img.disk.clone();
        let headers = |d: &MemDisk, img: &Image| -> Vec<Vec<u8>> {
            (1..=proof + 8).map(|id| d.read_vec(img.segment_start(id), BLOCK_SIZE)).chain([d.read_vec(0, 3 * BLOCK_SIZE)]).collect()
        };
        let r = img.resume(None, false);
        match r {
            Err(ResumeError::LostDurable { end_id, proof_id, proof_slot }) => {
                assert_eq!((end_id, proof_id, proof_slot), (6, want, (want - 1) as u32), "proof {proof}");
            }
            r => panic!("proof {proof}: {r:?}"),
        }
        // A refusal changes nothing.
        assert!(headers(&img.disk, &img) == headers(&before, &img), "proof {proof}: the refusal wrote");
        // The full scan refuses the same way.
        let mut full = Image { disk: before, sb: img.sb, record: img.record };
        assert!(matches!(full.resume(Some(0), false), Err(ResumeError::LostDurable { end_id: 6, .. })));
        // accept_data_loss goes on without segment 6 and invalidates
        // every valid segment past it.
        let s = img.resume(None, true).unwrap();
        assert_eq!(s.last_valid, 5);
        assert!(!img.holds(proof));
    }
}

/// A header that breaks the horizon (not written by a writer keeping it:
/// a bug, or a foreign writer) makes resume read every slot past the end,
/// in the log or past its end.
#[test]
fn resume_falls_back_to_the_full_scan_when_a_header_breaks_the_horizon() {
    let h = 4u32;
    let n = 256;
    // Past the end: 12 says only 1 was durable (1 + 4 < 12).
    let mut img = horizon_image(n, h, 10);
    img.write_segment_durable(12, 1, &[mb(1, 12, 0xff)]);
    img.write_segment_durable(100, 1, &[mb(1, 100, 0xff)]);
    let s = img.resume(None, false).unwrap();
    assert_eq!((s.last_valid, s.invalidated, s.full_scan), (10, 2, true));
    assert!(!img.holds(100));
    // In the log: 5 says nothing was durable (0 + 4 < 5).
    let mut img = horizon_image(n, h, 10);
    img.write_segment_durable(5, 0, &[mb(1, 5, 0xff)]);
    img.write_segment_durable(100, 9, &[mb(1, 100, 0xff)]);
    let s = img.resume(None, false).unwrap();
    assert_eq!((s.last_valid, s.invalidated, s.full_scan), (10, 1, true));
    assert_eq!(s.headers_read, n);
    assert!(!img.holds(100));
}

/// Each segment of the log is read with one I/O of its slot (header and
/// lines), each slot past the end with one header read; a slot whose whole
/// read fails (an unreadable unused tail) is read as before, header then
/// data, and only an error there aborts the resume.
#[test]
fn resume_reads_each_segment_with_one_io() {
    let mut img = horizon_image(512, 8, 20);
    let (s, reads) = img.resume_on(None, false, None);
    let s = s.unwrap();
    assert_eq!(s.headers_read, 20 + 1 + 8);
    assert_eq!(reads, s.headers_read);
    let s7 = img.segment_start(7);
    let (s, reads) = img.resume_on(None, false, Some(s7));
    assert_eq!(s.unwrap().last_valid, 20);
    assert_eq!(reads, 20 + 1 + 8 + 2, "segment 7: the failed slot read, then header and data");
}

/// A dirty line beyond its device's registered size is refused, wherever it
/// is in the log (here in a segment of the next lap around the ring); the
/// check looks at the lines of the log only, not at every line of the cache.
#[test]
fn resume_refuses_a_dirty_line_beyond_the_registered_size() {
    let beyond = (1u64 << 30) / 8; // the first block past device 1's size
    for at in [6u64, 8, 10] {
        let mut img = horizon_image(8, 4, 10);
        img.update_record(|r| r.last_migrated_segment_id = 5);
        img.write_segment_durable(at, at - 1, &[mb(1, at, 0xff), mb(1, beyond, 0x01)]);
        match img.resume(None, false) {
            Err(ResumeError::OutOfBounds { device_id: 1, sector }) => assert_eq!(sector, beyond * 8),
            r => panic!("segment {at}: {r:?}"),
        }
    }
    // Inside the size: fine.
    let mut img = horizon_image(8, 4, 10);
    img.update_record(|r| r.last_migrated_segment_id = 5);
    img.write_segment_durable(10, 9, &[mb(1, beyond - 1, 0xff)]);
    assert_eq!(img.resume(None, false).unwrap().last_valid, 10);
}
