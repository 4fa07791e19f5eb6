//! Deterministic corruption tests over valid images built in memory: every
//! corruption gives the documented error variant.

mod common;

use common::*;
use wbformat::crc32c::crc32c_raw_update;
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
                8..=11 => assert_eq!(
                    r,
                    Err(SuperblockError::UnsupportedVersion(
                        FORMAT_VERSION ^ (1 << (bit + 8 * (off as u8 - 8)))
                    ))
                ),
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
    check(&|c| put32(c, 8, 3), SuperblockError::UnsupportedVersion(3));
    check(&|c| put32(c, 8, 0), SuperblockError::UnsupportedVersion(0));
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
    for off in (28..32).chain(64..BLOCK_SIZE) {
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
        crc32c_raw_update,
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
        8..=11 => SegmentError::UnsupportedVersion(u32_at(8)),
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
            match field {
                10 | 11 => SegmentError::BadMetablock {
                    index: k,
                    reason: MetablockFault::NonZeroReserved,
                },
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
    let id = 1234;
    let (bytes, _) = three_line_segment(id);
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
            crc32c_raw_update,
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
        crc32c_raw_update,
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
        crc32c_raw_update,
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
