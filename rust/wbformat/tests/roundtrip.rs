//! Property tests: encode/decode round trips of the three on-disk structures,
//! and equivalence of the checksum entry points.

mod common;

use common::*;
use proptest::prelude::*;
use wbformat::crc32c::{crc32c, crc32c_raw_update, Crc32c};
use wbformat::format::*;

fn arb_metablock() -> impl Strategy<Value = Metablock> {
    prop_oneof![
        (1u8..=MAX_DEVICE_ID, 0u64..(u64::MAX / 8), 1u8..=255).prop_map(|(d, b, bits)| Metablock {
            sector: b * 8,
            device_id: d,
            dirty_bits: bits,
            flags: 0,
        }),
        // Clean lines (kept only in version 3 headers, see arb_header).
        (1u8..=MAX_DEVICE_ID, 0u64..(u64::MAX / 8)).prop_map(|(d, b)| Metablock {
            sector: b * 8,
            device_id: d,
            dirty_bits: 0xff,
            flags: METABLOCK_CLEAN,
        }),
        // Lines with nothing to replay: any sector and device id.
        (any::<u64>(), any::<u8>()).prop_map(|(s, d)| Metablock {
            sector: s,
            device_id: d,
            dirty_bits: 0,
            flags: 0,
        }),
    ]
}

fn arb_header() -> impl Strategy<Value = SegmentHeader> {
    (
        1u64..,
        1u64..,
        prop::collection::vec(arb_metablock(), 0..=255),
        any::<bool>(),
    )
        .prop_map(|(fid, id, mbs, v3)| {
            let mut h = SegmentHeader::new(fid, id);
            h.version = if v3 { SEGMENT_VERSION_V3 } else { FORMAT_VERSION };
            for mut m in mbs {
                if !v3 {
                    m.flags = 0;
                }
                h.push(m).unwrap();
            }
            h
        })
}

#[test]
fn segment_header_flags_refused() {
    let clean = Metablock { sector: 8, device_id: 1, dirty_bits: 0xff, flags: METABLOCK_CLEAN };
    let mut out = vec![0u8; BLOCK_SIZE * 2];
    // Flags in a version 2 header, an undefined flag, a partial clean line.
    for (version, mb) in [
        (FORMAT_VERSION, clean),
        (SEGMENT_VERSION_V3, Metablock { flags: 2, ..clean }),
        (SEGMENT_VERSION_V3, Metablock { dirty_bits: 0x7f, ..clean }),
    ] {
        let mut h = SegmentHeader::new(1, 1);
        h.version = version;
        h.push(mb).unwrap();
        assert!(
            matches!(
                encode_segment_buffer(&h, &mut out, default_sum()),
                Err(EncodeError::InvalidSegment(SegmentError::BadMetablock { index: 0, reason: MetablockFault::BadFlags(_) }))
            ),
            "{version} {mb:?}"
        );
    }
    let mut h = SegmentHeader::new(1, 1);
    h.version = SEGMENT_VERSION_V3;
    h.push(clean).unwrap();
    encode_segment_buffer(&h, &mut out, default_sum()).unwrap();
    assert_eq!(out[64 + 10], METABLOCK_CLEAN);
    assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), 3);
    let d = decode_segment_header(&out, 1, 1).unwrap();
    assert!(d.lines()[0].is_clean() && d.version == SEGMENT_VERSION_V3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn superblock_roundtrip(
        nr_segments in MIN_SEGMENTS..=MAX_SEGMENTS,
        extra in 0u64..2048,
        fid in 1u64..,
        time in any::<u64>(),
        horizon in prop_oneof![Just(0u32), Just(LOG_HORIZON), 1..=MAX_LOG_HORIZON],
        old in 0u32..3,
    ) {
        let sectors = (nr_segments + 1) * SEGMENT_SECTORS + extra;
        // Horizon 0: a version 2 superblock, as older versions formatted;
        // `old` 1: a version 4 one (no direct lines), 2: a version 3 one
        // (no clean lines either).
        let mut sb = Superblock::new(sectors, fid, time).unwrap();
        prop_assert_eq!(sb.version(), SUPERBLOCK_VERSION);
        prop_assert_eq!(sb.version(), 5);
        prop_assert_eq!(sb.segment_version(), SEGMENT_VERSION_V4);
        if old > 0 {
            sb = sb.with_version(SUPERBLOCK_VERSION - old);
        }
        let sb = sb.with_log_horizon(horizon);
        prop_assert_eq!(sb.log_horizon(), horizon);
        let v = if horizon == 0 { 2 } else { 5 - old };
        prop_assert_eq!(sb.version(), v);
        let seg = match v {
            5 => SEGMENT_VERSION_V4,
            4 => SEGMENT_VERSION_V3,
            _ => FORMAT_VERSION,
        };
        prop_assert_eq!(sb.segment_version(), seg);
        let xxh = matches!(sb.segment_sum(crc32c_raw_update, xxh64_pieces), SegmentSum::Xxh64(_));
        prop_assert_eq!(xxh, sb.version() >= 4);
        prop_assert_eq!(u64::from(sb.geometry().nr_segments()), nr_segments);
        let mut b = vec![0xffu8; BLOCK_SIZE + 7];
        encode_superblock(&sb, &mut b).unwrap();
        prop_assert!(b[BLOCK_SIZE..].iter().all(|&x| x == 0xff), "wrote past the block");
        prop_assert_eq!(decode_superblock(&b[..BLOCK_SIZE]), Ok(sb));
        prop_assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), sb.version());
        prop_assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), horizon);
        prop_assert_eq!(check_device_size(&sb, sectors), Ok(()));
        prop_assert_eq!(check_device_size(&sb, sectors + 1), Ok(()));
        prop_assert_eq!(
            check_device_size(&sb, sectors - 1),
            Err(SuperblockError::DeviceShrunk { formatted: sectors, actual: sectors - 1 })
        );
    }

    #[test]
    fn record_roundtrip(
        fid in 1u64..,
        generation in 0..=MAX_SEGMENT_ID,
        lm in 0..=MAX_SEGMENT_ID,
        regs in prop::collection::vec((1u8..=MAX_DEVICE_ID, 1u64.., any::<u64>()), 0..20),
    ) {
        let mut r = Record::new(fid);
        r.generation = generation;
        r.last_migrated_segment_id = lm;
        let mut idents = [0u64; REGISTRY_ENTRIES];
        for (d, s, i) in &regs {
            r.register(*d, *s).unwrap();
            idents[usize::from(*d)] = *i;
        }
        // An identity of an unregistered id is not written.
        idents[usize::from(MAX_DEVICE_ID)] |= u64::from(r.registered(MAX_DEVICE_ID).is_none());
        let mut b = vec![0u8; BLOCK_SIZE];
        encode_record_with_identities(&r, &idents, &mut b).unwrap();
        let back = decode_record(&b).unwrap();
        prop_assert_eq!(back, r);
        for d in 0..=255u8 {
            let last = regs.iter().rev().find(|(x, _, _)| *x == d);
            prop_assert_eq!(back.registered(d), last.map(|(_, s, _)| *s));
            prop_assert_eq!(record_identity(&b, d), last.map(|(_, _, i)| *i).filter(|&i| i != 0));
        }
        // The slot check and selection.
        let slot = (generation % 2) as u32;
        prop_assert_eq!(decode_record_slot(&b, fid, slot), Ok(r));
        prop_assert_eq!(
            decode_record_slot(&b, fid, 1 - slot),
            Err(RecordError::WrongSlot { generation, slot: 1 - slot })
        );
        prop_assert_eq!(
            decode_record_slot(&b, fid ^ 1, slot),
            Err(RecordError::WrongFormatId { expected: fid ^ 1, found: fid })
        );
        // Unregistering drops the identity with the size.
        let mut u = r;
        for (d, _, _) in &regs {
            u.unregister(*d).unwrap();
        }
        encode_record_with_identities(&u, &idents, &mut b).unwrap();
        prop_assert_eq!(decode_record(&b), Ok(u));
        for (d, _, _) in &regs {
            prop_assert_eq!(record_identity(&b, *d), None);
        }
    }

    /// The in-place selection (the kernel's) chooses exactly as
    /// `select_record`, whatever each slot holds: valid records of any
    /// generations (in the right slot or not), torn ones, zeros, another
    /// format's.
    #[test]
    fn record_selection_in_place_agrees(
        fid in 1u64..u64::MAX,
        ga in 0u64..8, gb in 0u64..8,
        ka in 0u8..4, kb in 0u8..4,
        reg in 1u64..1 << 40,
    ) {
        let mut blocks = [vec![0u8; BLOCK_SIZE], vec![0u8; BLOCK_SIZE]];
        for (i, (g, k)) in [(ga, ka), (gb, kb)].into_iter().enumerate() {
            let mut r = Record::new(if k == 3 { fid + 1 } else { fid });
            r.generation = g;
            r.last_migrated_segment_id = g * 3;
            r.register((i + 1) as u8, reg + g).unwrap();
            encode_record(&r, &mut blocks[i]).unwrap();
            match k {
                1 => blocks[i][200] ^= 1,
                2 => blocks[i].fill(0),
                _ => {}
            }
        }
        let want = select_record(&blocks[0], &blocks[1], fid);
        let mut out = Record::new(7);
        out.register(9, 9).unwrap();
        let got = select_record_into(&blocks[0], &blocks[1], fid, &mut out);
        match (want, got) {
            (Ok(w), Ok(g)) => {
                prop_assert_eq!(w.record, out);
                prop_assert_eq!((w.slot, w.other), (g.slot, g.other));
            }
            (Err(w), Err(g)) => prop_assert_eq!(w, g),
            (w, g) => prop_assert!(false, "select_record {:?}, in place {:?}", w, g),
        }
    }

    #[test]
    fn record_selection(fid in 1u64.., g in 0u64..MAX_SEGMENT_ID, newer_valid in any::<bool>()) {
        let mut older = Record::new(fid);
        older.generation = g;
        older.last_migrated_segment_id = 5;
        let mut newer = older.next_generation().unwrap();
        newer.last_migrated_segment_id = 9;
        let mut blocks = [vec![0u8; BLOCK_SIZE], vec![0u8; BLOCK_SIZE]];
        encode_record(&older, &mut blocks[older.slot() as usize]).unwrap();
        encode_record(&newer, &mut blocks[newer.slot() as usize]).unwrap();
        if !newer_valid {
            // A torn write of the newer record.
            blocks[newer.slot() as usize][100] ^= 0x40;
        }
        let c = select_record(&blocks[0], &blocks[1], fid).unwrap();
        if newer_valid {
            prop_assert_eq!(c.record, newer);
            prop_assert_eq!(c.slot, newer.slot());
            prop_assert_eq!(c.other, Ok(g));
        } else {
            prop_assert_eq!(c.record, older);
            let torn = matches!(c.other, Err(RecordError::BadChecksum { .. }));
            prop_assert!(torn);
        }
        prop_assert_eq!(c.record.block(), 1 + u64::from(c.slot));
    }

    #[test]
    fn segment_header_roundtrip(h in arb_header(), fill in any::<u8>(), xxh in any::<bool>()) {
        // Both checksums: CRC32C (superblock versions 2, 3), xxh64 (4).
        let sum = if xxh { default_sum() } else { SegmentSum::Crc32c(crc32c_raw_update) };
        let n = h.nr_lines as usize;
        let mut buf = vec![fill; BLOCK_SIZE * (n + 1)];
        for (i, b) in buf.iter_mut().enumerate().skip(BLOCK_SIZE) {
            *b = (i as u8).wrapping_mul(31) ^ fill;
        }
        let crc = encode_segment_buffer(&h, &mut buf, sum).unwrap();

        // Same result through the split API and through streaming.
        let mut hb = vec![0u8; BLOCK_SIZE];
        let crc2 = encode_segment_header(&h, &mut hb, &buf[BLOCK_SIZE..], sum).unwrap();
        prop_assert_eq!(crc, crc2);
        prop_assert_eq!(&hb[..], &buf[..BLOCK_SIZE]);
        // The checksum definition: CRC32C, or xxh64's low 32 bits, of the
        // header with the field zeroed, then the data.
        let mut copy = buf.clone();
        copy[12..16].fill(0);
        if xxh {
            prop_assert_eq!(crc, xxhash_rust::xxh64::xxh64(&copy, 0) as u32);
        } else {
            prop_assert_eq!(crc, crc32c(&copy));
            let mut hb3 = vec![0u8; BLOCK_SIZE];
            encode_segment_header_fields(&h, &mut hb3).unwrap();
            let mut c = segment_checksum_stream(&hb3, crc32c_raw_update);
            for line in buf[BLOCK_SIZE..].chunks(BLOCK_SIZE) {
                c.update(line);
            }
            set_segment_checksum(&mut hb3, c.finish()).unwrap();
            prop_assert_eq!(&hb3[..], &buf[..BLOCK_SIZE]);
        }
        prop_assert_eq!(segment_checksum(&buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..], sum), crc);

        let d = decode_segment_header(&buf, h.format_id, h.id).unwrap();
        let mut expect = h.clone();
        expect.checksum = crc;
        prop_assert_eq!(&d, &expect);
        prop_assert_eq!(verify_segment(&d, &buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..], sum), Ok(()));
        prop_assert_eq!(verify_segment_buffer(&d, &buf, sum), Ok(()));
        prop_assert_eq!(parse_segment_header(&buf[..BLOCK_SIZE]), Ok(expect));
        let mut out = SegmentHeader::default();
        prop_assert_eq!(
            check_segment(&buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..], h.format_id, h.id, sum, &mut out),
            Ok(())
        );
        // Any flipped data bit is caught.
        if n > 0 {
            let mut bad = buf.clone();
            let pos = BLOCK_SIZE + (usize::from(fill) * 37) % (n * BLOCK_SIZE);
            bad[pos] ^= 1 << (fill % 8);
            let caught = matches!(
                verify_segment_buffer(&d, &bad, sum),
                Err(SegmentError::BadChecksum { .. })
            );
            prop_assert!(caught);
            // Missing data is reported as truncated.
            prop_assert_eq!(
                verify_segment(&d, &buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..buf.len() - 1], sum),
                Err(SegmentError::Truncated { needed: n * BLOCK_SIZE, found: n * BLOCK_SIZE - 1 })
            );
        }
    }

    #[test]
    fn crc_streaming_any_split(data in prop::collection::vec(any::<u8>(), 0..3000), cut in any::<prop::sample::Index>()) {
        let at = cut.index(data.len() + 1);
        let mut c = Crc32c::new();
        c.update(&data[..at]);
        c.update(&data[at..]);
        prop_assert_eq!(c.finish(), crc32c(&data));
        // The kernel passes its own update function with raw semantics.
        let mut k = Crc32c::with_update(|s: u32, d: &[u8]| crc32c_raw_update(s, d));
        k.update(&data);
        prop_assert_eq!(k.finish(), crc32c(&data));
    }
}

#[test]
fn encoders_check_lengths() {
    let sb = Superblock::new(10 * 2048, 7, 0).unwrap();
    assert_eq!(
        encode_superblock(&sb, &mut [0u8; 4095]),
        Err(EncodeError::BufferTooSmall {
            needed: 4096,
            found: 4095
        })
    );
    assert_eq!(
        encode_record(&Record::new(1), &mut [0u8; 10]),
        Err(EncodeError::BufferTooSmall {
            needed: 4096,
            found: 10
        })
    );
    assert_eq!(
        encode_record(&Record::new(0), &mut [0u8; 4096]),
        Err(EncodeError::ZeroFormatId)
    );
    let mut h = SegmentHeader::new(1, 1);
    h.push(mb(1, 0, 1)).unwrap();
    assert_eq!(
        encode_segment_header(&h, &mut [0u8; 4096], &[0u8; 4095], default_sum()),
        Err(EncodeError::BufferTooSmall {
            needed: 4096,
            found: 4095
        })
    );
    assert_eq!(
        encode_segment_buffer(&h, &mut [0u8; 8191], default_sum()),
        Err(EncodeError::BufferTooSmall {
            needed: 8192,
            found: 8191
        })
    );
    assert_eq!(
        encode_segment_header_fields(&SegmentHeader::new(1, 0), &mut [0u8; 4096]),
        Err(EncodeError::ZeroSegmentId)
    );
    assert_eq!(
        encode_segment_header_fields(&SegmentHeader::new(0, 1), &mut [0u8; 4096]),
        Err(EncodeError::ZeroFormatId)
    );
    let mut bad = SegmentHeader::new(1, 1);
    bad.push(Metablock {
        sector: 3,
        device_id: 1,
        dirty_bits: 1,
        flags: 0,
    })
    .unwrap();
    assert_eq!(
        encode_segment_header_fields(&bad, &mut [0u8; 4096]),
        Err(EncodeError::InvalidSegment(SegmentError::BadMetablock {
            index: 0,
            reason: MetablockFault::UnalignedSector(3)
        }))
    );
    let mut full = SegmentHeader::new(1, 1);
    for _ in 0..255 {
        full.push(Metablock::EMPTY).unwrap();
    }
    assert!(full.is_full());
    assert_eq!(
        full.push(Metablock::EMPTY),
        Err(SegmentError::TooManyLines(256))
    );
    // Superblock constructor limits.
    assert!(matches!(
        Superblock::new(3 * 2048 - 1, 1, 0),
        Err(SuperblockError::InconsistentSize { .. })
    ));
    assert_eq!(
        Superblock::new(3 * 2048, 0, 0),
        Err(SuperblockError::ZeroFormatId)
    );
    assert!(matches!(
        Superblock::new((MAX_SEGMENTS + 2) * 2048, 1, 0),
        Err(SuperblockError::TooLarge { .. })
    ));
    assert!(Superblock::new((MAX_SEGMENTS + 1) * 2048, 1, 0).is_ok());
}

#[test]
fn image_helpers_agree_with_geometry() {
    let img = Image::format(4, 100);
    let g = img.geometry();
    assert_eq!(g.nr_segments(), 4);
    assert_eq!(img.segment_start(5), 2048);
    assert_eq!(g.used_sectors(), 5 * 2048);
    assert!(g.may_write(5, 1) && !g.may_write(6, 1) && !g.may_write(0, 10));
    assert_eq!(segment_write_sectors(255), Some(2048));
    assert_eq!(segment_write_sectors(256), None);
}

/// A crafted record with a valid CRC but a counter near `u64::MAX` is
/// refused (no overflow anywhere downstream).
#[test]
fn record_implausible_counters_are_refused() {
    for (generation, lm) in [(u64::MAX, 1), (2, u64::MAX - 3), (2, MAX_SEGMENT_ID + 1)] {
        let mut r = Record::new(7);
        r.generation = generation;
        r.last_migrated_segment_id = lm;
        let mut b = vec![0u8; BLOCK_SIZE];
        encode_record(&r, &mut b).unwrap();
        assert!(matches!(decode_record(&b), Err(RecordError::ImplausibleCounter { .. })));
    }
}

#[test]
fn backing_identity_is_fnv1a_and_never_zero() {
    // FNV-1a 64 of the empty string and of "a" (published test vectors).
    assert_eq!(backing_identity(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(backing_identity(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_ne!(backing_identity(b"dm-name:backA"), backing_identity(b"dm-name:backB"));
}

// ---------------------------------------------------------------------
// Direct lines (segment header version 4)

/// A version 4 header of `pattern` (`D`: a direct line, `R`: a line in
/// RAM, `E`: a direct line with no sectors left).
fn direct_header(pattern: &str) -> SegmentHeader {
    let mut h = SegmentHeader::new(FORMAT_ID, 7);
    h.version = SEGMENT_VERSION_V4;
    for (k, c) in pattern.chars().enumerate() {
        let line = Metablock { sector: 8 * (100 + k as u64), device_id: 1, dirty_bits: 0xff, flags: 0 };
        h.push(match c {
            'D' => Metablock { flags: METABLOCK_DIRECT, ..line },
            'E' => Metablock { flags: METABLOCK_DIRECT, ..Metablock::EMPTY },
            _ => line,
        })
        .unwrap();
    }
    h
}

#[test]
fn segment_runs_are_the_lines_in_ram() {
    let runs = |p: &str| segment_runs(&direct_header(p)).collect::<Vec<_>>();
    assert_eq!(runs(""), []);
    assert_eq!(runs("RRR"), [(0, 3)]);
    assert_eq!(runs("D"), []);
    assert_eq!(runs("DDE"), []);
    assert_eq!(runs("RDR"), [(0, 1), (2, 1)]);
    assert_eq!(runs("DRRDDR"), [(1, 2), (5, 1)]);
    assert_eq!(runs("RRDEDRRRD"), [(0, 2), (5, 3)]);
    // A full segment, alternating.
    let p: String = (0..LINES_PER_SEGMENT).map(|k| if k % 2 == 0 { 'D' } else { 'R' }).collect();
    let r = runs(&p);
    assert_eq!(r.len(), 127);
    assert!(r.iter().enumerate().all(|(i, &(k, n))| k == 2 * i as u32 + 1 && n == 1));
}

/// A segment of `pattern` with pseudo-random data, encoded.
fn direct_segment(pattern: &str, sum: SegmentSum) -> (SegmentHeader, Vec<u8>) {
    let h = direct_header(pattern);
    let mut buf = vec![0u8; BLOCK_SIZE * (1 + pattern.len())];
    let mut x = 0x1234_5678_9abc_def0u64;
    for b in buf[BLOCK_SIZE..].iter_mut() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *b = (x >> 56) as u8;
    }
    encode_segment_buffer(&h, &mut buf, sum).unwrap();
    let back = decode_segment_header(&buf, FORMAT_ID, 7).unwrap();
    assert_eq!(back.lines(), h.lines());
    (back, buf)
}

fn sum_of_buf(h: &SegmentHeader, buf: &[u8], sum: SegmentSum) -> u32 {
    segment_checksum_of(h, &buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..], sum)
}

#[test]
fn direct_checksum_covers_the_header_and_the_ram_lines_only() {
    for sum in [SegmentSum::Crc32c(crc32c_raw_update), default_sum()] {
        for pattern in ["DRRDDR", "RDR", "RRDEDRRRD", "D", "DDE", "RD"] {
            let (h, buf) = direct_segment(pattern, sum);
            let crc = sum_of_buf(&h, &buf, sum);
            assert_eq!(h.checksum, crc);
            verify_segment_buffer(&h, &buf, sum).unwrap();
            for (k, c) in pattern.chars().enumerate() {
                for at in [0, 511, 512, 4095] {
                    let mut b = buf.clone();
                    b[BLOCK_SIZE * (1 + k) + at] ^= 0x40;
                    if c == 'R' {
                        assert_ne!(sum_of_buf(&h, &b, sum), crc, "{pattern}: line {k} byte {at} changed");
                        assert!(matches!(verify_segment_buffer(&h, &b, sum), Err(SegmentError::BadChecksum { .. })));
                    } else {
                        assert_eq!(sum_of_buf(&h, &b, sum), crc, "{pattern}: a direct line's bytes are not covered");
                        verify_segment_buffer(&h, &b, sum).unwrap();
                    }
                }
            }
            // Every byte of the header block but the checksum field.
            for off in (0..BLOCK_SIZE).filter(|o| !(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4).contains(o)) {
                let mut b = buf.clone();
                b[off] ^= 0x01;
                assert_ne!(sum_of_buf(&h, &b, sum), crc, "{pattern}: header byte {off} changed");
            }
        }
    }
}

#[test]
fn direct_checksum_tells_the_runs_apart() {
    // The same bytes, other runs: "RDR" and "RRD" with equal RAM data
    // (lines 0 and 2 of the first = lines 0 and 1 of the second) differ in
    // the header already; equal headers with the data moved do too.
    for sum in [SegmentSum::Crc32c(crc32c_raw_update), default_sum()] {
        let (h, buf) = direct_segment("DRDR", sum);
        let crc = sum_of_buf(&h, &buf, sum);
        let mut b = buf.clone();
        // Swap the two RAM lines.
        let (l1, l3) = (BLOCK_SIZE * 2, BLOCK_SIZE * 4);
        let one = b[l1..l1 + BLOCK_SIZE].to_vec();
        b.copy_within(l3..l3 + BLOCK_SIZE, l1);
        b[l3..l3 + BLOCK_SIZE].copy_from_slice(&one);
        assert_ne!(sum_of_buf(&h, &b, sum), crc);
    }
}

#[test]
fn checksum_without_direct_lines_is_the_old_one() {
    for sum in [SegmentSum::Crc32c(crc32c_raw_update), default_sum()] {
        for pattern in ["", "R", "RRRRRRRR"] {
            for version in [FORMAT_VERSION, SEGMENT_VERSION_V3, SEGMENT_VERSION_V4] {
                let mut h = direct_header(pattern);
                h.version = version;
                let mut buf = vec![0x5au8; BLOCK_SIZE * (1 + pattern.len())];
                let crc = encode_segment_buffer(&h, &mut buf, sum).unwrap();
                assert_eq!(crc, segment_checksum(&buf[..BLOCK_SIZE], &buf[BLOCK_SIZE..], sum), "{pattern:?} v{version}");
                assert_eq!(sum_of_buf(&h, &buf, sum), crc);
            }
        }
    }
}

#[test]
fn direct_flag_refused_where_it_does_not_belong() {
    let d = Metablock { sector: 8, device_id: 1, dirty_bits: 0x0f, flags: METABLOCK_DIRECT };
    let mut out = vec![0u8; BLOCK_SIZE * 2];
    let bad = |r: Result<u32, EncodeError>| {
        matches!(r, Err(EncodeError::InvalidSegment(SegmentError::BadMetablock { index: 0, reason: MetablockFault::BadFlags(_) })))
    };
    for (version, mb) in [
        (FORMAT_VERSION, d),
        (SEGMENT_VERSION_V3, d),
        (SEGMENT_VERSION_V4, Metablock { flags: METABLOCK_DIRECT | METABLOCK_CLEAN, dirty_bits: 0xff, ..d }),
        (SEGMENT_VERSION_V4, Metablock { flags: 4, ..d }),
    ] {
        let mut h = SegmentHeader::new(1, 1);
        h.version = version;
        h.push(mb).unwrap();
        assert!(bad(encode_segment_buffer(&h, &mut out, default_sum())), "encode v{version} {mb:?}");
        assert!(matches!(h.validate(), Err(SegmentError::BadMetablock { index: 0, reason: MetablockFault::BadFlags(_) })), "validate v{version} {mb:?}");
    }
    // In version 4: a direct line, with or without sectors; decoded back.
    for mb in [d, Metablock { flags: METABLOCK_DIRECT, ..Metablock::EMPTY }] {
        let mut h = SegmentHeader::new(1, 1);
        h.version = SEGMENT_VERSION_V4;
        h.push(mb).unwrap();
        encode_segment_buffer(&h, &mut out, default_sum()).unwrap();
        assert_eq!(out[64 + 10], METABLOCK_DIRECT);
        let back = decode_segment_header(&out, 1, 1).unwrap();
        assert_eq!(back.version, SEGMENT_VERSION_V4);
        assert_eq!(back.lines()[0], mb);
        assert!(back.lines()[0].is_direct() && !back.lines()[0].is_clean());
        // The same bytes claiming version 3 (or 2, where byte 10 is
        // reserved): refused by the decoder.
        let mut c = out.clone();
        c[8..12].copy_from_slice(&SEGMENT_VERSION_V3.to_le_bytes());
        assert!(matches!(decode_segment_header(&c, 1, 1), Err(SegmentError::BadMetablock { index: 0, reason: MetablockFault::BadFlags(_) })));
        c[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        assert!(matches!(decode_segment_header(&c, 1, 1), Err(SegmentError::BadMetablock { index: 0, .. })));
    }
    // Direct and clean together, decoded from a version 4 header.
    let mut h = SegmentHeader::new(1, 1);
    h.version = SEGMENT_VERSION_V4;
    h.push(Metablock { dirty_bits: 0xff, ..d }).unwrap();
    encode_segment_buffer(&h, &mut out, default_sum()).unwrap();
    out[64 + 10] = METABLOCK_DIRECT | METABLOCK_CLEAN;
    assert!(matches!(decode_segment_header(&out, 1, 1), Err(SegmentError::BadMetablock { index: 0, reason: MetablockFault::BadFlags(_) })));
}
