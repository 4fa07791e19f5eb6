//! writeboost-recover on cache images built with `writeboost_tools::image`:
//! two devices sharing a cache, newest copy wins, partial-sector dirty
//! masks, a torn segment not written, the cache clean afterwards (the
//! kernel's resume replays nothing), every refusal changing no byte, a dry
//! run changing no byte, an interrupted run continued by a rerun.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use tempfile::TempDir;
use writeboost_tools::image::{dirty, line_data, ImageBuilder};
use writeboost_tools::recover::{recover, Options, Progress};
use writeboost_tools::wbformat::format::{backing_identity, Metablock, SECTOR_SIZE};

/// Backing disks: 1024 sectors (512 KiB), filled with this byte.
const DISK_SECTORS: u64 = 1024;
const FILL: u8 = 0xee;

fn bin(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-recover")).args(args).output().expect("run writeboost-recover");
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn check_json(p: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-check")).args([p.to_str().unwrap(), "--json"]).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The log: (segment id, lines), oldest first.
type Log = Vec<(u64, Vec<Metablock>)>;

/// Two devices sharing the cache; blocks rewritten by newer segments, whole
/// and in part (sector masks), and a torn segment at the end.
fn scenario() -> (ImageBuilder, Log, Vec<u64>) {
    let mut b = ImageBuilder::with_segments(16).unwrap();
    b.register(1, DISK_SECTORS).unwrap();
    b.register(2, DISK_SECTORS).unwrap();
    b.generation(5).last_migrated(2);
    // Segments 1 and 2 are migrated: their lines must not be written.
    let old: Log = vec![(1, vec![dirty(1, 0, 0xff)]), (2, vec![dirty(2, 0, 0xff)])];
    let log: Log = vec![
        (3, (0..12).map(|i| dirty(1, i, 0xff)).chain((0..6).map(|i| dirty(2, 10 + i, 0xff))).collect()),
        // Newer copies: whole blocks, sector masks, the other device.
        (4, vec![dirty(1, 3, 0x0f), dirty(2, 11, 0xf0), dirty(1, 20, 0x81), dirty(1, 4, 0xff)]),
        (5, vec![dirty(1, 3, 0x01), dirty(2, 12, 0x3c), dirty(1, 21, 0x7e), dirty(2, 127, 0xff)]),
        // Consecutive lines of consecutive blocks: merged writes.
        (6, (40..60).map(|i| dirty(2, i, 0xff)).collect()),
    ];
    for (id, l) in old.iter().chain(log.iter()) {
        b.segment(*id, l);
    }
    // Torn: never acknowledged as durable, never written back.
    let torn = vec![dirty(1, 30, 0xff), dirty(2, 30, 0xff)];
    b.torn_segment(7, &torn, &[4096 / 512 + 3]);
    (b, log, vec![7])
}

/// What each sector of each disk must hold after write-back: the newest
/// logged copy of it, else the disk's old content.
fn expected(log: &Log) -> BTreeMap<u8, Vec<u8>> {
    let mut disks = BTreeMap::new();
    for d in [1u8, 2] {
        disks.insert(d, vec![FILL; DISK_SECTORS as usize * SECTOR_SIZE]);
    }
    for (id, lines) in log {
        for (k, mb) in lines.iter().enumerate() {
            let data = line_data(*id, k as u32);
            let disk = disks.get_mut(&mb.device_id).unwrap();
            for j in 0..8 {
                if mb.dirty_bits & (1 << j) != 0 {
                    let s = (mb.sector as usize + j) * SECTOR_SIZE;
                    disk[s..s + SECTOR_SIZE].copy_from_slice(&data[j * SECTOR_SIZE..(j + 1) * SECTOR_SIZE]);
                }
            }
        }
    }
    disks
}

struct Setup {
    dir: TempDir,
    cache: PathBuf,
    disks: BTreeMap<u8, PathBuf>,
}

impl Setup {
    fn new(b: &ImageBuilder) -> Self {
        let dir = TempDir::new().unwrap();
        let cache = dir.path().join("cache.img");
        b.write_file(&cache).unwrap();
        let mut disks = BTreeMap::new();
        for d in [1u8, 2] {
            let p = dir.path().join(format!("disk{d}.img"));
            std::fs::write(&p, vec![FILL; DISK_SECTORS as usize * SECTOR_SIZE]).unwrap();
            disks.insert(d, p);
        }
        Setup { dir, cache, disks }
    }
    fn map(&self, d: u8) -> String {
        format!("{d}={}", self.disks[&d].display())
    }
    fn args<'a>(&'a self, maps: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![self.cache.to_str().unwrap()];
        for m in maps {
            v.push("--map");
            v.push(m);
        }
        v.extend_from_slice(extra);
        v
    }
    /// Every byte of the cache and the disks.
    fn snapshot(&self) -> Vec<Vec<u8>> {
        let mut v = vec![std::fs::read(&self.cache).unwrap()];
        for p in self.disks.values() {
            v.push(std::fs::read(p).unwrap());
        }
        v
    }
    fn disk(&self, d: u8) -> Vec<u8> {
        std::fs::read(&self.disks[&d]).unwrap()
    }
}

/// Compares disk contents sector by sector, naming the first wrong ones.
fn assert_disk(got: &[u8], want: &[u8], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: size");
    let bad: Vec<usize> = (0..got.len() / SECTOR_SIZE)
        .filter(|&s| got[s * SECTOR_SIZE..(s + 1) * SECTOR_SIZE] != want[s * SECTOR_SIZE..(s + 1) * SECTOR_SIZE])
        .collect();
    assert!(bad.is_empty(), "{what}: {} wrong sectors, first {:?}", bad.len(), &bad[..bad.len().min(10)]);
}

fn assert_clean(cache: &Path) {
    let v = check_json(cache);
    assert_eq!(v["consistent"], true, "{v:#}");
    assert_eq!(v["log"]["replayed"], 0, "the kernel's resume would replay segments: {v:#}");
    assert_eq!(v["log"]["dirty_lines"], 0, "{v:#}");
}

#[test]
fn writes_newest_copies_to_the_right_disks_and_marks_the_cache_clean() {
    let (b, log, _) = scenario();
    let s = Setup::new(&b);
    let maps = [s.map(1), s.map(2)];
    let (code, out, err) = bin(&s.args(&maps, &["--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"], "clean", "{v:#}");
    assert_eq!(v["replayed"], 4);
    assert_eq!(v["last_migrated_after"], 6);
    assert_eq!(v["verify_replayed"], 0);
    assert_eq!(v["verify_dirty_lines"], 0);
    // The torn segment 7's header was invalidated, as resume does.
    assert_eq!(v["invalidated_headers"], 1, "{v:#}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_disk(&s.disk(2), &want[&2], "disk 2");
    let bytes: u64 = want.values().flat_map(|d| d.chunks(SECTOR_SIZE)).filter(|c| c.iter().any(|&x| x != FILL)).count() as u64 * 512;
    assert_eq!(v["bytes_written"], bytes, "each dirty sector written once");
    // Sequential lines are merged: segment 6's 20 blocks are one write.
    assert!(v["devices"][1]["writes"].as_u64().unwrap() < 10, "{v:#}");
    assert_clean(&s.cache);
    // A rerun finds nothing to do and changes nothing.
    let before = s.snapshot();
    let (code, out, err) = bin(&s.args(&maps, &[]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to write: the cache is clean"), "{out}");
    assert!(s.snapshot() == before, "a rerun on a clean cache changed bytes");
}

#[test]
fn dry_run_lists_the_writes_and_changes_no_byte() {
    let (b, log, _) = scenario();
    let s = Setup::new(&b);
    let maps = [s.map(1), s.map(2)];
    let before = s.snapshot();
    let (code, out, err) = bin(&s.args(&maps, &["--dry-run", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(s.snapshot() == before, "a dry run changed bytes");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["outcome"], "dry-run");
    // The listed writes cover exactly the sectors the real run writes.
    let want = expected(&log);
    let mut covered: BTreeMap<u8, Vec<bool>> = [(1u8, vec![false; DISK_SECTORS as usize]), (2, vec![false; DISK_SECTORS as usize])].into();
    for w in v["writes"].as_array().unwrap() {
        let d = w["device_id"].as_u64().unwrap() as u8;
        let (a, n) = (w["sector"].as_u64().unwrap() as usize, w["sectors"].as_u64().unwrap() as usize);
        assert_eq!(w["bytes"].as_u64().unwrap() as usize, n * 512);
        for x in &mut covered.get_mut(&d).unwrap()[a..a + n] {
            assert!(!*x, "sector written twice");
            *x = true;
        }
    }
    for d in [1u8, 2] {
        for (sct, c) in covered[&d].iter().enumerate() {
            let changed = want[&d][sct * 512..(sct + 1) * 512].iter().any(|&x| x != FILL);
            assert_eq!(*c, changed, "device {d} sector {sct}: listed {c}, dirty {changed}");
        }
    }
    let (code, text, _) = bin(&s.args(&maps, &["--dry-run"]));
    assert_eq!(code, 0);
    assert!(text.contains("dry run: nothing was written"), "{text}");
    assert!(text.contains("would write (device, first sector, sectors, bytes):"), "{text}");
    assert!(s.snapshot() == before);
    // The real run then does what the dry run listed.
    let (code, out, _) = bin(&s.args(&maps, &["--json"]));
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["bytes_written"], v["bytes_written"]);
    assert_eq!(r["devices"], v["devices"]);
}

/// Runs a command that must be refused with `code`, changing no byte.
fn refused(s: &Setup, args: &[&str], code: &str) -> String {
    let before = s.snapshot();
    let (rc, out, err) = bin(args);
    assert_eq!(rc, 1, "expected a refusal ({code}): {out}{err}");
    assert!(out.contains(&format!("REFUSED ({code})")), "expected {code}: {out}");
    assert!(out.contains("refused: nothing was changed"), "{out}");
    assert!(s.snapshot() == before, "a refusal ({code}) changed bytes");
    out
}

#[test]
fn refusals_change_nothing() {
    let (b, _, _) = scenario();
    let s = Setup::new(&b);
    // A registered device without --map.
    let m1 = [s.map(1)];
    let out = refused(&s, &s.args(&m1, &[]), "no-map");
    assert!(out.contains("device 2 is registered in the cache (1024 sectors, 29 dirty lines) but has no --map 2=DISK"), "{out}");
    // A backing disk smaller than registered.
    let small = s.dir.path().join("small.img");
    std::fs::write(&small, vec![0u8; 512 * 1000]).unwrap();
    let m = [s.map(1), format!("2={}", small.display())];
    let out = refused(&s, &s.args(&m, &[]), "backing-size");
    assert!(out.contains("has 1000 sectors but the cache registered 1024"), "{out}");
    // An id the cache does not know.
    let m = [s.map(1), s.map(2), format!("9={}", small.display())];
    refused(&s, &s.args(&m, &[]), "unknown-map");
    // The same disk for two devices.
    let m = [s.map(1), format!("2={}", s.disks[&1].display())];
    refused(&s, &s.args(&m, &[]), "same-disk");
    // The cache device in use (another program holds it exclusively).
    let m = [s.map(1), s.map(2)];
    {
        let f = std::fs::File::open(&s.cache).unwrap();
        f.try_lock().unwrap();
        refused(&s, &s.args(&m, &[]), "open");
    }
    // A corrupt superblock.
    let mut bad = s.snapshot()[0].clone();
    bad[0] ^= 0xff;
    let badp = s.dir.path().join("bad.img");
    std::fs::write(&badp, &bad).unwrap();
    let (rc, out, _) = bin(&[badp.to_str().unwrap(), "--map", &s.map(1), "--map", &s.map(2)]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("REFUSED (superblock)"), "{out}");
}

#[test]
fn identity_unknown_for_an_image_needs_ignore_identity() {
    let (mut b, log, _) = scenario();
    b.identity(1, backing_identity(b"dm-name:back1")).unwrap();
    let s = Setup::new(&b);
    let m = [s.map(1), s.map(2)];
    let out = refused(&s, &s.args(&m, &[]), "identity-unknown");
    assert!(out.contains("device 1: the identity of"), "{out}");
    let (code, out, err) = bin(&s.args(&m, &["--ignore-identity"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning (identity-unknown)"), "{out}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_disk(&s.disk(2), &want[&2], "disk 2");
    assert_clean(&s.cache);
    // The identities stay in the record.
    let v = check_json(&s.cache);
    let cur = v["records"].as_array().unwrap().iter().find(|r| r["status"] == "current").unwrap().clone();
    assert_eq!(cur["registry"][0]["backing_identity"], backing_identity(b"dm-name:back1"), "{cur:#}");
}

#[test]
fn proven_loss_needs_accept_data_loss() {
    let (mut b, log, _) = scenario();
    // Segment 8 was written when 7 (torn) was durable: 7 is lost, not torn.
    b.durable_segment(8, 7, &[dirty(1, 50, 0xff)]);
    let s = Setup::new(&b);
    let m = [s.map(1), s.map(2)];
    let out = refused(&s, &s.args(&m, &[]), "lost-durable-segment");
    assert!(out.contains("segment 7 (slot 6) is corrupt, but segment 8 (slot 7) was written after it was durable"), "{out}");
    let (code, out, err) = bin(&s.args(&m, &["--accept-data-loss"]));
    assert_eq!(code, 0, "{out}{err}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_disk(&s.disk(2), &want[&2], "disk 2");
    // Segment 8 was invalidated with 7: the kernel resumes without the option.
    assert_clean(&s.cache);
    let v = check_json(&s.cache);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn skip_device_drops_its_data_and_writes_the_others() {
    let (mut b, log, _) = scenario();
    // Device 3 owns data but is not registered (a corrupt record): segment
    // 7 made whole (it is torn in the scenario), then segment 8 with it.
    b.segment(7, &[]);
    b.segment(8, &[dirty(3, 1, 0xff)]);
    let s = Setup::new(&b);
    let m = [s.map(1), s.map(2)];
    let out = refused(&s, &s.args(&m, &[]), "unregistered-owner");
    assert!(out.contains("device 3 owns 1 dirty lines but is not in the cache's registry"), "{out}");
    let (code, out, err) = bin(&s.args(&m, &["--skip-device", "3"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("warning (skipped)"), "{out}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_disk(&s.disk(2), &want[&2], "disk 2");
    assert_clean(&s.cache);
    // Skipping a registered device: its data is dropped, the other's written.
    let (b, log, _) = scenario();
    let s = Setup::new(&b);
    let m1 = [s.map(1)];
    let (code, out, err) = bin(&s.args(&m1, &["--skip-device", "2", "--json"]));
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["bytes_dropped"].as_u64().unwrap() > 0);
    assert_disk(&s.disk(1), &expected(&log)[&1], "disk 1");
    assert!(s.disk(2).iter().all(|&x| x == FILL), "a skipped device's disk was written");
    assert_clean(&s.cache);
    // An id the cache does not know is a typo: refused (usage), nothing
    // changed, the ids it knows named.
    let (b, _, _) = scenario();
    let s = Setup::new(&b);
    let before = s.snapshot();
    let (code, out, err) = bin(&s.args(&[s.map(1), s.map(2)], &["--skip-device", "9"]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("--skip-device 9: the cache has no device 9 (registered or owning dirty data: 1, 2)"), "{out}");
    assert!(s.snapshot() == before, "a refused --skip-device changed bytes");
}

/// Bytes segment 3's round writes: device 1 blocks 0..=11 but block 4
/// (superseded) and block 3's sectors 0..4 (rewritten); device 2 blocks
/// 10..=15 but sectors 0..4 of block 11 and 2..6 of block 12.
const ROUND3: u64 = (10 * 8 + 4 + 4 * 8 + 4 + 4) * 512;

/// Stops the run after `after` bytes.
struct StopAfter<'a> {
    after: u64,
    done: u64,
    stop: &'a AtomicBool,
}

impl Progress for StopAfter<'_> {
    fn start(&mut self, _: u64) {}
    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if self.done >= self.after {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
    fn finish(&mut self) {}
}

#[test]
fn an_interrupted_run_is_continued_by_a_rerun() {
    let (b, log, _) = scenario();
    let s = Setup::new(&b);
    let opts = Options {
        maps: s.disks.clone(),
        batch: 1,
        ..Options::default()
    };
    let stop = AtomicBool::new(false);
    // Stop in segment 4's round, after its first write.
    let mut p = StopAfter { after: ROUND3 + 1, done: 0, stop: &stop };
    let rep = recover(&s.cache, &opts, &mut p, &stop).unwrap();
    assert_eq!(rep.outcome, "interrupted", "{rep:#?}");
    assert_eq!(rep.last_migrated_after, Some(3), "the record names the completed round only");
    let v = check_json(&s.cache);
    assert_eq!(v["consistent"], true, "{v:#}");
    assert_eq!(v["log"]["last_migrated_segment_id"], 3);
    assert_eq!(v["log"]["replayed"], 3, "segments 4..=6 are still dirty in the cache");
    let stop = AtomicBool::new(false);
    let rep = recover(&s.cache, &opts, &mut StopAfter { after: u64::MAX, done: 0, stop: &stop }, &stop).unwrap();
    assert_eq!(rep.outcome, "clean", "{rep:#?}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_disk(&s.disk(2), &want[&2], "disk 2");
    assert_clean(&s.cache);
}

/// Sets up a loop device over `file` (`losetup -f --show`), if this host
/// lets us; detached on drop.
struct Loop(String);

impl Loop {
    fn over(file: &Path) -> Option<Loop> {
        let o = Command::new("losetup").args(["-f", "--show", file.to_str()?]).output().ok()?;
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        (o.status.success() && !dev.is_empty()).then_some(Loop(dev))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn a_loop_device_over_the_cache_or_a_disk_is_that_disk() {
    let (b, _, _) = scenario();
    let s = Setup::new(&b);
    let Some(lc) = Loop::over(&s.cache) else {
        eprintln!("skipped: no loop device could be set up (needs root and loop support)");
        return;
    };
    // A loop device over the cache image: writing device 1's data there
    // would overwrite the cache (--ignore-identity: a loop device has
    // another identity than the one registered, none is recorded here).
    let m = [format!("1={}", lc.0), s.map(2)];
    let out = refused(&s, &s.args(&m, &["--ignore-identity"]), "same-disk");
    assert!(out.contains(&format!("device 1: {} is the cache device", lc.0)), "{out}");
    // The cache given as the loop device, a disk as the image itself.
    let m = [s.map(1), format!("2={}", s.cache.display())];
    let mut args = vec![lc.0.as_str()];
    for x in &m {
        args.push("--map");
        args.push(x);
    }
    refused(&s, &args, "same-disk");
    // One disk for two devices, once through a loop device.
    let Some(l1) = Loop::over(&s.disks[&1]) else { return };
    let m = [s.map(1), format!("2={}", l1.0)];
    let out = refused(&s, &s.args(&m, &[]), "same-disk");
    assert!(out.contains("is also given for device 1"), "{out}");
}

#[test]
fn the_partial_last_block_of_an_odd_sized_disk_is_written_back() {
    // A backing disk of 1001 sectors: its last 4 KiB block (sectors
    // 1000..1008) has one sector on the disk, and a write there is cached
    // as a line with dirty mask 0x01. It is within the disk, not beyond.
    let mut b = ImageBuilder::with_segments(16).unwrap();
    b.register(1, 1001).unwrap();
    b.generation(3).last_migrated(0);
    b.segment(1, &[dirty(1, 124, 0xff), dirty(1, 125, 0x01)]);
    let dir = TempDir::new().unwrap();
    let cache = dir.path().join("cache.img");
    b.write_file(&cache).unwrap();
    let disk = dir.path().join("odd.img");
    std::fs::write(&disk, vec![FILL; 1001 * SECTOR_SIZE]).unwrap();
    let v = check_json(&cache);
    assert_eq!(v["consistent"], true, "writeboost-check: {v:#}");
    let m = format!("1={}", disk.display());
    let (code, out, err) = bin(&[cache.to_str().unwrap(), "--map", &m]);
    assert_eq!(code, 0, "{out}{err}");
    let got = std::fs::read(&disk).unwrap();
    let want1 = line_data(1, 1);
    assert_eq!(&got[1000 * SECTOR_SIZE..], &want1[..SECTOR_SIZE], "the last sector");
    assert_eq!(&got[992 * SECTOR_SIZE..1000 * SECTOR_SIZE], &line_data(1, 0)[..], "block 124");
    assert_clean(&cache);
    // A dirty sector past the end is still refused.
    let mut b = ImageBuilder::with_segments(16).unwrap();
    b.register(1, 1001).unwrap();
    b.generation(3).last_migrated(0);
    b.segment(1, &[dirty(1, 125, 0x03)]);
    b.write_file(&cache).unwrap();
    let (code, out, _) = bin(&[cache.to_str().unwrap(), "--map", &m]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED (out-of-range)"), "{out}");
}

/// Errors before the report (exit status 2) still give `--json` users a
/// JSON object on standard output, not only a line on standard error.
#[test]
fn errors_before_the_report_are_json_with_json() {
    let (rc, out, err) = bin(&["/nonexistent-cache", "--map", "1=/a", "--map", "1=/b", "--json"]);
    assert_eq!(rc, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    assert_eq!(v["outcome"], "error");
    assert_eq!(v["cache"], "/nonexistent-cache");
    assert!(v["error"].as_str().unwrap().contains("given twice"), "{v}");
    assert!(err.contains("given twice"), "{err}");
    // Without --json: stderr only.
    let (rc, out, _) = bin(&["/nonexistent-cache", "--map", "1=/a", "--map", "1=/b"]);
    assert_eq!((rc, out.as_str()), (2, ""));
    // The same for the inspection tools.
    for exe in [env!("CARGO_BIN_EXE_writeboost-check"), env!("CARGO_BIN_EXE_writeboost-dump")] {
        let o = Command::new(exe).args(["/nonexistent-cache", "--json"]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{exe}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{exe}: not JSON ({e})"));
        assert_eq!((v["outcome"].as_str(), v["device"].as_str()), (Some("error"), Some("/nonexistent-cache")), "{exe}");
        assert!(v["error"].as_str().unwrap().contains("cannot open"), "{exe}: {v}");
        // A usage error that clap finds (an unknown flag) too.
        let o = Command::new(exe).args(["/nonexistent-cache", "--bogus", "--json"]).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{exe}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{exe}: usage error not JSON ({e})"));
        assert_eq!(v["outcome"], "error", "{exe}");
        assert!(v["error"].as_str().unwrap().contains("'--bogus'"), "{exe}: {v}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("Usage:"), "{exe}");
    }
    let (rc, out, err) = bin(&["/nonexistent-cache", "--map", "300=/a", "--json"]);
    assert_eq!(rc, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("usage error not JSON ({e}): {out:?}"));
    assert!(v["error"].as_str().unwrap().contains("not a device id"), "{v}");
}

/// The exit status tells what happened to the disks: a report that cannot
/// be printed (standard output on a full disk) leaves it as the outcome
/// says, with a line on standard error; `writeboost-check -q` prints
/// nothing on standard output, with `--json` too.
#[test]
fn an_unprintable_report_keeps_the_outcome_status_and_quiet_is_quiet() {
    let (b, log, _) = scenario();
    let s = Setup::new(&b);
    let maps = [s.map(1), s.map(2)];
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-recover")).args(s.args(&maps, &["--json"])).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("cannot print the report") && err.contains("the outcome was: clean"), "{err}");
    let want = expected(&log);
    assert_disk(&s.disk(1), &want[&1], "disk 1");
    assert_clean(&s.cache);
    for extra in [&["-q"][..], &["-q", "--json"][..]] {
        for dev in [s.cache.to_str().unwrap(), "/nonexistent-cache"] {
            let o = Command::new(env!("CARGO_BIN_EXE_writeboost-check")).arg(dev).args(extra).output().unwrap();
            assert!(o.stdout.is_empty(), "check {dev} {extra:?} printed {:?}", String::from_utf8_lossy(&o.stdout));
            assert_eq!(o.status.code(), Some(if dev == "/nonexistent-cache" { 2 } else { 0 }), "{dev} {extra:?}");
        }
    }
    // A usage error with -q --json: nothing on stdout either (breakK).
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-check")).args(["-q", "--json", "--bogus"]).output().unwrap();
    assert!(o.stdout.is_empty() && o.status.code() == Some(2), "{:?}", String::from_utf8_lossy(&o.stdout));
    // A missing argument is named in the JSON message (clap puts it on a
    // second line).
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-check")).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("<DEVICE>"), "{v}");
    // writeboost-dump: a slot range past the device's slots is refused, as
    // a first slot past them is.
    let o = Command::new(env!("CARGO_BIN_EXE_writeboost-dump")).arg(&s.cache).args(["--segments", "0..100000"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stderr).contains("slots 0..100000 out of range"), "{}", String::from_utf8_lossy(&o.stderr));
}
