//! Runs writeboost-dump and writeboost-check on images built with
//! `writeboost_tools::image`, valid and corrupt, and checks exit codes and
//! key output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;
use writeboost_tools::image::{dirty, flip, patch, segment_offset, ImageBuilder};
use writeboost_tools::wbformat::format::{Geometry, BLOCK_SIZE, SEGMENT_SECTORS};

fn run(bin: &str, args: &[&str]) -> Output {
    let exe = match bin {
        "dump" => env!("CARGO_BIN_EXE_writeboost-dump"),
        _ => env!("CARGO_BIN_EXE_writeboost-check"),
    };
    Command::new(exe)
        .args(args)
        .output()
        .expect("cannot run the tool")
}

fn check(path: &Path) -> (i32, String) {
    let o = run("check", &[path.to_str().unwrap()]);
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code().unwrap_or(-1), text)
}

fn check_json(path: &Path) -> (i32, serde_json::Value) {
    let o = run("check", &[path.to_str().unwrap(), "--json"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), v)
}

fn lines(n: u64, dev: u8, base: u64) -> Vec<writeboost_tools::wbformat::format::Metablock> {
    (0..n).map(|i| dirty(dev, base + i, 0xff)).collect()
}

/// 16 slots, device 1 registered, segments 1..=6, 1..=2 migrated.
fn healthy() -> ImageBuilder {
    let mut b = ImageBuilder::with_segments(16).unwrap();
    b.register(1, 1 << 21).unwrap();
    b.register(2, 1 << 21).unwrap();
    b.generation(3).last_migrated(2);
    for id in 1..=6 {
        b.segment(id, &lines(10, 1, id * 4));
    }
    b.segment(7, &[dirty(2, 5, 0x0f), dirty(1, 24, 0xf0)]);
    b
}

fn write(b: &ImageBuilder, dir: &TempDir, name: &str) -> PathBuf {
    let p = dir.path().join(name);
    b.write_file(&p).unwrap();
    p
}

#[test]
fn healthy_image_is_consistent() {
    let dir = TempDir::new().unwrap();
    let p = write(&healthy(), &dir, "ok.img");
    let (code, out) = check(&p);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("segments 3..=7 replayable (5 segments)"),
        "{out}"
    );
    assert!(out.contains("next segment id 8"), "{out}");
    assert!(out.contains("result: consistent"), "{out}");
    assert!(out.contains("never written"), "{out}");
    let (code, v) = check_json(&p);
    assert_eq!(code, 0);
    assert_eq!(v["consistent"], true);
    assert_eq!(v["log"]["last_id"], 7);
    assert_eq!(v["log"]["replayed"], 5);
    assert_eq!(v["log"]["end_kind"], "never-written");
    // Segments 3..=6 each write 10 distinct blocks of device 1 (block ranges
    // overlap by 6): the newest copy of each block wins.
    assert_eq!(v["log"]["devices"][0]["device_id"], 1);
    assert_eq!(v["records"][1]["status"], "current");
    // Quiet: nothing printed.
    let o = run("check", &[p.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
}

#[test]
fn dump_shows_metadata() {
    let dir = TempDir::new().unwrap();
    let p = write(&healthy(), &dir, "ok.img");
    let ps = p.to_str().unwrap();
    let o = run("dump", &[ps]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("superblock: format v5, format id 0x5742525300000001, 16 segments"),
        "{out}"
    );
    assert!(
        out.contains("record slot 1 (block 2): current, generation 3, last migrated segment 2"),
        "{out}"
    );
    assert!(
        out.contains("record slot 0 (block 1): previous, generation 2"),
        "{out}"
    );
    assert!(
        out.contains("registered devices: 1 (2097152 sectors), 2 (2097152 sectors)"),
        "{out}"
    );
    assert!(
        out.contains("replayable log: segments 3..=7 (5 segments)"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("valid, in log")).count(),
        5,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("empty")).count(),
        9,
        "{out}"
    );

    let o = run("dump", &[ps, "--segments", "6", "--lines"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("device   2  sector             40  dirty 0x0f XXXX...."),
        "{out}"
    );
    assert!(
        out.contains("device   1  sector            192  dirty 0xf0 ....XXXX"),
        "{out}"
    );

    let o = run("dump", &[ps, "--json", "--segments", "valid", "--lines"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 5);
    assert_eq!(segs[0]["id"], 3);
    assert_eq!(segs[4]["lines"][0]["device_id"], 2);
    assert_eq!(v["log_last_id"], 7);

    let o = run("dump", &[ps, "--segments", "2..4"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("segments (slots 2..4)"), "{out}");

    // Usage errors.
    assert_eq!(run("dump", &[ps, "--segments", "x"]).status.code(), Some(2));
    assert_eq!(
        run("dump", &[ps, "--segments", "99"]).status.code(),
        Some(2)
    );
    assert_eq!(run("dump", &[]).status.code(), Some(2));
    assert_eq!(run("check", &["/nonexistent/cache"]).status.code(), Some(2));
}

#[test]
fn torn_last_segment_is_normal() {
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.torn_segment(8, &lines(20, 2, 100), &[8 * 5 + 3]);
    let p = write(&b, &dir, "torn.img");
    let (code, out) = check(&p);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("log end (torn)"), "{out}");
    assert!(
        out.contains("note: The log ends at torn segment 8"),
        "{out}"
    );
    assert!(out.contains("Segment 8 in slot 7 is incomplete"), "{out}");
    let o = run("dump", &[p.to_str().unwrap(), "--segments", "7"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("bad-checksum"));
}

#[test]
fn valid_segment_past_a_torn_one_is_a_problem() {
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.torn_segment(8, &lines(20, 2, 100), &[9]);
    b.segment(9, &lines(3, 2, 300));
    let p = write(&b, &dir, "gap.img");
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "PROBLEM (valid-past-end): Segment 9 in slot 8 is valid but lies past the end"
        ),
        "{out}"
    );
}

#[test]
fn unregistered_owner_is_a_problem() {
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.segment(8, &[dirty(9, 1, 1)]);
    let p = write(&b, &dir, "unreg.img");
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Device id 9 owns 1 dirty lines in the log but is not registered"),
        "{out}"
    );
    let (_, v) = check_json(&p);
    assert_eq!(v["problems"][0]["code"], "unregistered-owner");
}

#[test]
fn dirty_data_past_the_backing_device_is_a_problem() {
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.register(3, 64).unwrap();
    b.segment(8, &[dirty(3, 8, 1)]);
    let p = write(&b, &dir, "range.img");
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("out-of-range"), "{out}");
}

#[test]
fn corrupt_metadata_is_detected() {
    let dir = TempDir::new().unwrap();
    let b = healthy();
    let g: Geometry = b.geometry();
    let base = write(&b, &dir, "base.img");
    let copy = |name: &str| {
        let p = dir.path().join(name);
        std::fs::copy(&base, &p).unwrap();
        p
    };

    // Superblock bit flip.
    let p = copy("sb.img");
    flip(&p, 50, 0x04).unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1);
    assert!(out.contains("superblock checksum mismatch"), "{out}");
    let o = run("dump", &[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("superblock: INVALID"));

    // Not formatted at all.
    let p = copy("zero.img");
    patch(&p, 0, &[0u8; 8]).unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1);
    assert!(out.contains("bad magic"), "{out}");

    // Current record torn: the previous one is used; the log starts earlier.
    let p = copy("rec.img");
    flip(&p, 2 * BLOCK_SIZE as u64 + 30, 0x01).unwrap();
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["records"][0]["status"], "current");
    assert_eq!(v["log"]["first_id"], 3);
    // Both records torn.
    flip(&p, BLOCK_SIZE as u64 + 30, 0x01).unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1);
    assert!(out.contains("no valid record"), "{out}");

    // A corrupt segment in the middle of the log cuts it short, and the
    // valid segments after it are reported.
    let p = copy("mid.img");
    flip(
        &p,
        segment_offset(&g, 5).unwrap() + BLOCK_SIZE as u64 + 7,
        0x80,
    )
    .unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("segments 3..=4 replayable"), "{out}");
    assert!(
        out.contains("Segment 6 in slot 5 is valid but lies past the end"),
        "{out}"
    );
    assert!(
        out.contains("Segment 7 in slot 6 is valid but lies past the end"),
        "{out}"
    );

    // Unsupported version in the next segment's header: corrupt.
    let p = copy("ver.img");
    patch(&p, segment_offset(&g, 8).unwrap(), b"WBRSSEG\0\x05\0\0\0").unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PROBLEM (corrupt)"), "{out}");

    // Shrunk device.
    let p = copy("short.img");
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len((17 * SEGMENT_SECTORS - 1) * 512).unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1);
    assert!(out.contains("cache device shrank"), "{out}");
    let o = run("dump", &[p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("missing"));

    // Tiny file: an I/O-level failure is still a clean error.
    let p = dir.path().join("tiny.img");
    std::fs::write(&p, [0u8; 100]).unwrap();
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("superblock truncated"), "{out}");
}

#[test]
fn overwritten_slot_before_migration_is_a_problem() {
    // Record says 2 migrated, but slot 2 (id 3) was overwritten by id 19
    // (3 + 16): the kernel broke the reuse rule.
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.segment(19, &lines(2, 1, 0));
    let p = write(&b, &dir, "reuse.img");
    let (code, out) = check(&p);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("newer-than-expected"), "{out}");
}

#[test]
fn wrapped_log_and_stale_lap() {
    // 4 slots; ids 1..=9 written; 6 migrated: log 7..=9 in slots 2,3,0;
    // slot 1 holds id 6 from the previous lap.
    let dir = TempDir::new().unwrap();
    let mut b = ImageBuilder::with_segments(4).unwrap();
    b.register(1, 1 << 20).unwrap();
    b.last_migrated(6).generation(10);
    for id in 1..=9 {
        b.segment(id, &lines(3, 1, id));
    }
    let p = write(&b, &dir, "wrap.img");
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"]["first_id"], 7);
    assert_eq!(v["log"]["last_id"], 9);
    assert_eq!(v["log"]["end_kind"], "stale");
    // Blocks 7..9, 8..10, 9..11: 5 distinct blocks, newest copies only.
    assert_eq!(v["log"]["dirty_lines"], 5);
    assert_eq!(v["log"]["superseded_lines"], 3 + 1);
    // Ring full: 5 migrated, log 6..=9 occupies all 4 slots.
    let mut b2 = b.clone();
    b2.last_migrated(5);
    let p = write(&b2, &dir, "full.img");
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"]["end_kind"], "ring-full");
    assert_eq!(v["log"]["replayed"], 4);
}

#[test]
fn foreign_segments_end_the_log() {
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    b.foreign_segment(8, 0x1234, &lines(2, 1, 0));
    let p = write(&b, &dir, "foreign.img");
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"]["end_kind"], "foreign");
    let o = run("dump", &[p.to_str().unwrap(), "--segments", "7"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("foreign"));
}

#[test]
fn one_gib_image_is_quick() {
    let dir = TempDir::new().unwrap();
    let mut b = ImageBuilder::new(1 << 21).unwrap(); // 1 GiB
    b.register(1, 1 << 30).unwrap();
    for id in 1..=40 {
        b.segment(id, &lines(255, 1, id * 100));
    }
    let p = write(&b, &dir, "big.img");
    let t = std::time::Instant::now();
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"]["replayed"], 40);
    let o = run("dump", &[p.to_str().unwrap(), "--segments", "all"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.contains("valid, in log")).count(),
        40
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("empty")).count(),
        1023 - 40
    );
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

#[test]
fn backing_identities_are_shown_and_checked() {
    use writeboost_tools::wbformat::format::backing_identity;
    let dir = TempDir::new().unwrap();
    let mut b = healthy();
    let id = backing_identity(b"dm-name:backA");
    b.identity(1, id).unwrap();
    let p = write(&b, &dir, "ident.img");
    let o = run("dump", &[p.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("1 ({} sectors, identity {id:#018x}), 2 ({} sectors)", 1 << 21, 1 << 21)),
        "{out}"
    );
    let (code, v) = check_json(&p);
    assert_eq!(code, 0);
    let reg = &v["records"][1]["registry"];
    assert_eq!(reg[0]["backing_identity"], id);
    assert_eq!(reg[1]["backing_identity"], serde_json::Value::Null);
    // The identity of an id that is not registered is not written (a
    // record holding one is corrupt: see wbformat's corruption tests).
    let mut b = healthy();
    b.identity(9, 5).unwrap();
    let p = write(&b, &dir, "unreg.img");
    let (code, out) = check(&p);
    assert_eq!(code, 0, "{out}");
}

/// Usage errors of writeboost-recover that only the library can see (an id
/// both mapped and skipped, an id out of range) exit 2, as its --help says,
/// and change nothing.
#[test]
fn recover_usage_errors_exit_2() {
    let dir = TempDir::new().unwrap();
    let img = write(&healthy(), &dir, "cache.img");
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let before = std::fs::read(&img).unwrap();
    let exe = env!("CARGO_BIN_EXE_writeboost-recover");
    let d = format!("1={}", disk.display());
    for args in [
        vec![img.to_str().unwrap(), "--map", &d, "--skip-device", "1"],
        vec![img.to_str().unwrap(), "--map", "0=/dev/null"],
    ] {
        let o = Command::new(exe).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&img).unwrap(), before, "a usage error changed the cache");
}

#[test]
fn clean_lines_are_not_counted_as_dirty() {
    // Segment 1: 3 clean lines (read caching) and 2 dirty ones; segment 2:
    // 1 clean line. Found by breakC: the dump's "dirty" column and check's
    // per-segment dirty_metablocks counted clean lines as dirty.
    use writeboost_tools::wbformat::format::METABLOCK_CLEAN;
    let clean = |block| {
        let mut m = dirty(1, block, 0xff);
        m.flags = METABLOCK_CLEAN;
        m
    };
    let dir = TempDir::new().unwrap();
    let mut b = ImageBuilder::with_segments(8).unwrap();
    b.register(1, 1 << 20).unwrap();
    b.generation(2).last_migrated(0);
    b.segment(1, &[clean(10), clean(11), dirty(1, 20, 0xff), clean(12), dirty(1, 21, 0x01)]);
    b.segment(2, &[clean(30)]);
    let p = write(&b, &dir, "clean.img");
    let (code, v) = check_json(&p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["log"]["dirty_lines"], 2, "{v:#}");
    assert_eq!(v["log"]["segments"][0]["dirty_metablocks"], 2, "{v:#}");
    assert_eq!(v["log"]["segments"][0]["clean_metablocks"], 3, "{v:#}");
    assert_eq!(v["log"]["segments"][1]["dirty_metablocks"], 0, "{v:#}");
    assert_eq!(v["log"]["segments"][1]["clean_metablocks"], 1, "{v:#}");
    let o = run("dump", &[p.to_str().unwrap(), "--lines"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    let row = |slot: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(slot) && l.contains("valid"))
            .unwrap_or_else(|| panic!("no row for slot {slot}: {out}"))
            .split_whitespace()
            .take(5)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(out.contains("slot           id lines dirty clean direct  status"), "{out}");
    assert_eq!(row("0"), "0 1 5 2 3", "{out}");
    assert_eq!(row("1"), "1 2 1 0 1", "{out}");
    assert_eq!(out.matches("clean line").count(), 4, "{out}");
    let o = run("dump", &[p.to_str().unwrap(), "--json", "--lines"]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let segs = d["segments"].as_array().expect("segments");
    assert_eq!(segs[0]["dirty_lines"], 2, "{d:#}");
    assert_eq!(segs[0]["clean_lines"], 3, "{d:#}");
    assert_eq!(segs[0]["lines"][0]["clean"], true, "{d:#}");
    assert_eq!(segs[0]["lines"][2]["clean"], false, "{d:#}");
}
