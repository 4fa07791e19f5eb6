//! The tools' memory across boots: which backing disk was last attached to
//! which cache, and whether that cache may still hold dirty data of it.
//!
//! The kernel forgets everything at a crash; the cache device's log only
//! knows device ids. A backing disk used without its cache after a crash
//! (a device created with cache 0 and written to while the cache is not
//! resumed) gets newer data that a later resume of the cache overwrites
//! with the older cached data (the "forgotten cache"). The kernel cannot see
//! that across boots, so the tools keep this small file and
//! `writeboost-create` refuses such a use (see [`check_create`]), while
//! `writeboost-resume-cache` warns about disks used without their cache
//! (see [`used_without`]).
//!
//! The file is JSON (`/var/lib/writeboost/state.json`, or
//! `$WRITEBOOST_STATE_FILE`), with a version field, changed under the
//! [`LockKind::State`] lock and replaced atomically (a temporary file,
//! fsync, rename, fsync of the directory), so a crash leaves the old or the
//! new one. A missing file is an empty state. An unreadable one (not JSON,
//! an unknown version) is reported on standard error and treated as empty;
//! the next change sets it aside as `state.json.corrupt` first.
//!
//! Disks are identified without udev (the guest has none), from sysfs, by
//! the first of: a device-mapper uuid, a device-mapper name, a `wwid`, a
//! `serial`, a partition of a disk identified so (`<disk>-part<N>`), and
//! finally `major:minor` with the size in sectors.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blockdev::DevNo;
use crate::error::{Error, Result};
use crate::lock::{self, LockKind};
use crate::signals::Interrupt;
use crate::sysfs::Sys;

/// The version of the file's format.
pub const VERSION: u32 = 1;

/// Where the state file is: `$WRITEBOOST_STATE_FILE`, or
/// `/var/lib/writeboost/state.json`.
pub fn state_path() -> PathBuf {
    std::env::var_os("WRITEBOOST_STATE_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/writeboost/state.json"))
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`VERSION`].
    pub version: u32,
    /// One entry per backing disk ever attached to a cache.
    pub disks: Vec<DiskEntry>,
    /// Entries a disk left behind when it was attached to another cache
    /// while its last one may still hold dirty data of it: that data is
    /// stale (`used_without_cache` is set), until that cache is clean.
    #[serde(default)]
    pub stale: Vec<DiskEntry>,
}

impl Default for State {
    fn default() -> Self {
        State { version: VERSION, disks: Vec::new(), stale: Vec::new() }
    }
}

/// What is known of one backing disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskEntry {
    /// Its identity (see [`disk_key`]).
    pub disk: String,
    /// The path it was last used by, for messages.
    pub path: String,
    /// The device id it had.
    pub device_id: u8,
    /// The writeboost device's name.
    pub device_name: String,
    /// The cache id it was last attached to.
    pub cache_id: u8,
    /// The identity of that cache's device.
    pub cache: String,
    /// That cache device's path, for messages.
    pub cache_path: String,
    /// The cache may hold dirty data of this disk: it was attached (or
    /// bound by a resume) and not seen clean since (detach, remove, free of
    /// a clean cache, format of the cache device).
    pub dirty: bool,
    /// When the disk was put to use without that cache although it may hold
    /// dirty data of it (`writeboost-create --force`), seconds since the
    /// epoch.
    #[serde(default)]
    pub used_without_cache: Option<u64>,
    /// Last change, seconds since the epoch.
    pub updated: u64,
}

impl DiskEntry {
    /// `cache 1 (/dev/vdb)`.
    pub fn cache_label(&self) -> String {
        format!("cache {} ({})", self.cache_id, self.cache_path)
    }
}

/// A state file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl State {
    /// Parses the file's text.
    pub fn parse(text: &str) -> std::result::Result<State, Unreadable> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Unreadable(format!("not JSON: {}", e)))?;
        match v.get("version").and_then(|x| x.as_u64()) {
            Some(n) if n == u64::from(VERSION) => {}
            Some(n) => return Err(Unreadable(format!("version {} is not known to this tool (it knows {})", n, VERSION))),
            None => return Err(Unreadable("it has no version".into())),
        }
        serde_json::from_value(v).map_err(|e| Unreadable(format!("bad contents: {}", e)))
    }

    /// The entry of a disk.
    pub fn entry(&self, disk: &str) -> Option<&DiskEntry> {
        self.disks.iter().find(|e| e.disk == disk)
    }

    /// The entry of a disk, made if missing.
    fn entry_mut(&mut self, disk: &str) -> Option<&mut DiskEntry> {
        self.disks.iter_mut().find(|e| e.disk == disk)
    }

    /// Records that a disk is attached to (or bound by its dirty data to) a
    /// cache: that cache may hold dirty data of it from now on. If another
    /// cache may still hold dirty data of it, that is kept in `stale`.
    pub fn attached(&mut self, disk: &Disk, device_id: u8, device_name: &str, cache_id: u8, cache: &Disk, now: u64) {
        let e = DiskEntry {
            disk: disk.key.clone(),
            path: disk.path.clone(),
            device_id,
            device_name: device_name.to_string(),
            cache_id,
            cache: cache.key.clone(),
            cache_path: cache.path.clone(),
            dirty: true,
            used_without_cache: None,
            updated: now,
        };
        match self.entry_mut(&disk.key) {
            Some(old) => {
                let prev = std::mem::replace(old, e);
                if prev.dirty && prev.cache != cache.key {
                    let mut prev = prev;
                    prev.used_without_cache.get_or_insert(now);
                    self.stale.retain(|x| !(x.disk == prev.disk && x.cache == prev.cache));
                    self.stale.push(prev);
                }
            }
            None => self.disks.push(e),
        }
    }

    /// Records that the last cache of a disk holds no dirty data of it.
    pub fn clean(&mut self, disk: &str, now: u64) {
        if let Some(e) = self.entry_mut(disk) {
            e.dirty = false;
            e.used_without_cache = None;
            e.updated = now;
        }
    }

    /// Records that no disk has dirty data in the cache on `cache` (freed
    /// clean, formatted, or resumed without binding them).
    pub fn cache_clean(&mut self, cache: &str, now: u64) {
        for e in self.disks.iter_mut().filter(|e| e.cache == cache && (e.dirty || e.used_without_cache.is_some())) {
            e.dirty = false;
            e.used_without_cache = None;
            e.updated = now;
        }
        self.stale.retain(|e| e.cache != cache);
    }

    /// Records that a disk was put to use without its cache.
    pub fn used_without(&mut self, disk: &str, now: u64) {
        if let Some(e) = self.entry_mut(disk) {
            e.used_without_cache.get_or_insert(now);
            e.updated = now;
        }
    }
}

/// A block device with its identity, for the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disk {
    /// Its identity (see [`disk_key`]).
    pub key: String,
    /// A path of it, for messages.
    pub path: String,
}

impl Disk {
    /// The disk of a device number (`path`: how it was named, if known).
    pub fn of(sys: &Sys, d: DevNo, path: Option<&str>) -> Disk {
        Disk {
            key: disk_key(sys, d),
            path: path.map(str::to_string).or_else(|| sys.dev_path(d)).unwrap_or_else(|| d.to_string()),
        }
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The identity of a block device that survives a reboot, as far as sysfs
/// tells without udev (see the module documentation).
pub fn disk_key(sys: &Sys, d: DevNo) -> String {
    disk_key_depth(sys, d, 0)
}

fn disk_key_depth(sys: &Sys, d: DevNo, depth: u32) -> String {
    let dir = sys.block_dir(d);
    if let Some(u) = read_trimmed(&dir.join("dm/uuid")) {
        return format!("dm-uuid:{}", u);
    }
    if let Some(n) = read_trimmed(&dir.join("dm/name")) {
        return format!("dm-name:{}", n);
    }
    for f in ["wwid", "device/wwid"] {
        if let Some(w) = read_trimmed(&dir.join(f)) {
            return format!("wwid:{}", w);
        }
    }
    for f in ["serial", "device/serial"] {
        if let Some(s) = read_trimmed(&dir.join(f)) {
            return format!("serial:{}", s);
        }
    }
    if depth == 0 {
        if let Some(n) = read_trimmed(&dir.join("partition")) {
            let parent = std::fs::canonicalize(&dir)
                .ok()
                .and_then(|p| p.parent().and_then(|q| read_trimmed(&q.join("dev"))))
                .and_then(|s| s.parse::<DevNo>().ok());
            if let Some(p) = parent {
                let pk = disk_key_depth(sys, p, 1);
                if !pk.starts_with("devno:") {
                    return format!("{}-part{}", pk, n);
                }
            }
        }
    }
    let size = read_trimmed(&dir.join("size")).unwrap_or_else(|| "?".into());
    format!("devno:{}:{}", d, size)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The state file.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    lock_dir: PathBuf,
}

impl Store {
    /// The file at [`state_path`], locked in the tools' run directory.
    pub fn from_env() -> Self {
        Store { path: state_path(), lock_dir: lock::run_dir() }
    }

    /// A file at `path` with its lock in `lock_dir`.
    pub fn new(path: impl Into<PathBuf>, lock_dir: impl Into<PathBuf>) -> Self {
        Store { path: path.into(), lock_dir: lock_dir.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file: a missing one is empty; an unreadable one is empty
    /// too, with the reason.
    fn read(&self) -> Result<(State, Option<Unreadable>)> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => match State::parse(&t) {
                Ok(s) => Ok((s, None)),
                Err(u) => Ok((State::default(), Some(u))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((State::default(), None)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Ok((State::default(), Some(Unreadable("not text".into()))))
            }
            Err(e) => Err(Error::io("cannot read the writeboost state file", &self.path, e)),
        }
    }

    fn warn_unreadable(&self, u: &Unreadable) {
        eprintln!(
            "warning: the writeboost state file {} is unreadable ({}): which disks had which caches is not known, \
             so nothing is checked against it",
            self.path.display(),
            u.0
        );
    }

    /// The state, for a check: a file that cannot be read or used is
    /// reported (standard error) and treated as empty.
    pub fn load(&self) -> State {
        match self.read() {
            Ok((s, None)) => s,
            Ok((s, Some(u))) => {
                self.warn_unreadable(&u);
                s
            }
            Err(e) => {
                self.warn_unreadable(&Unreadable(e.to_string()));
                State::default()
            }
        }
    }

    /// Changes the state under its lock and writes it atomically. An
    /// unreadable file is set aside (`.corrupt`) first.
    pub fn update(&self, intr: &Interrupt, change: impl FnOnce(&mut State, u64)) -> Result<()> {
        let _l = lock::acquire_in(&self.lock_dir, LockKind::State, intr, None)?;
        let (mut s, bad) = self.read()?;
        if let Some(u) = &bad {
            self.warn_unreadable(u);
            let aside = self.aside_path();
            std::fs::rename(&self.path, &aside).map_err(|e| Error::io("cannot set aside", &self.path, e))?;
            eprintln!("warning: set it aside as {} and started a new one", aside.display());
        }
        let before = s.clone();
        change(&mut s, now());
        if s == before && bad.is_none() {
            return Ok(());
        }
        self.write(&s)
    }

    fn aside_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".corrupt");
        PathBuf::from(p)
    }

    fn write(&self, s: &State) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut text = serde_json::to_string_pretty(s).map_err(|e| Error::failed(format!("cannot encode the state: {}", e)))?;
        text.push('\n');
        let r = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        })();
        r.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io("cannot write the writeboost state file", &self.path, e)
        })
    }

    /// [`Store::update`], but a failure is only a warning (the command it
    /// belongs to has done its work): `what` says what was not recorded.
    pub fn record(&self, intr: &Interrupt, what: &str, change: impl FnOnce(&mut State, u64)) {
        if let Err(e) = self.update(intr, change) {
            eprintln!("warning: {} was not recorded in the writeboost state: {}", what, e);
        }
    }
}

/// Why `writeboost-create` must not use a disk without a cache (`cache`
/// 0) or for another cache: its last cache may hold dirty data of it and
/// is not resumed. `resumed` says whether a cache is resumed on a device of
/// that identity. `None`: nothing against it.
pub fn check_create(st: &State, disk: &str, cache: u8, resumed: &dyn Fn(&str) -> bool) -> Option<DiskEntry> {
    let e = st.entry(disk)?;
    if !e.dirty || resumed(&e.cache) {
        return None;
    }
    if cache != 0 && cache == e.cache_id {
        return None;
    }
    Some(e.clone())
}

/// The refusal of [`check_create`], with what to do.
pub fn refusal(e: &DiskEntry, name: &str, backing: &str, cache: u8) -> String {
    let how = if cache == 0 { "without a cache".to_string() } else { format!("for cache {}", cache) };
    format!(
        "{backing} was last attached to {cl} as device {id}, and that cache may still hold dirty data of it but \
         is not resumed. Using the disk {how} now and resuming the cache later would write the cache's older \
         data over the newer. To use it with its cache (after a crash): writeboost-create {name} {id} {backing} \
         {cid} && writeboost-resume-cache {cid} {cpath}. --force uses it {how} anyway (the cache's data of it \
         is then stale; writeboost-resume-cache warns about it)",
        backing = backing,
        cl = e.cache_label(),
        id = e.device_id,
        how = how,
        name = name,
        cid = e.cache_id,
        cpath = e.cache_path,
    )
}

/// The disks recorded as used without the cache on `cache` (identity)
/// while it may hold dirty data of them.
pub fn used_without<'a>(st: &'a State, cache: &str) -> Vec<&'a DiskEntry> {
    st.disks.iter().chain(st.stale.iter()).filter(|e| e.cache == cache && e.used_without_cache.is_some()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(k: &str, p: &str) -> Disk {
        Disk { key: k.into(), path: p.into() }
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("lib/state.json"), dir.path().join("run"));
        let intr = Interrupt::new_unregistered();
        assert_eq!(store.load(), State::default());
        store.update(&intr, |s, now| s.attached(&disk("dm-name:back1", "/dev/mapper/back1"), 1, "wa", 1, &disk("devno:254:16:262144", "/dev/vdb"), now)).unwrap();
        let s = store.load();
        assert_eq!(s.version, VERSION);
        assert_eq!(s.disks.len(), 1);
        assert!(s.disks[0].dirty);
        assert_eq!(s.disks[0].cache_label(), "cache 1 (/dev/vdb)");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("lib")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        store.update(&intr, |s, now| s.clean("dm-name:back1", now)).unwrap();
        assert!(!store.load().disks[0].dirty);
    }

    #[test]
    fn unreadable_files_are_empty_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let store = Store::new(&p, dir.path().join("run"));
        let intr = Interrupt::new_unregistered();
        for bad in ["{not json", "{\"disks\": []}", "{\"version\": 99, \"disks\": []}", "{\"version\": 1, \"disks\": 3}", ""] {
            std::fs::write(&p, bad).unwrap();
            assert_eq!(store.load(), State::default(), "{bad}");
        }
        std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(store.load(), State::default());
        std::fs::write(&p, "{garbage").unwrap();
        store.update(&intr, |s, now| s.attached(&disk("a", "/dev/a"), 1, "wa", 1, &disk("c", "/dev/c"), now)).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("state.json.corrupt")).unwrap(), "{garbage");
        assert_eq!(store.load().disks.len(), 1);
        assert!(State::parse("{\"version\": 2}").unwrap_err().0.contains("version 2 is not known"));
    }

    #[test]
    fn the_forgotten_cache_rule() {
        let mut st = State::default();
        let back = disk("dm-name:back1", "/dev/mapper/back1");
        let cache = disk("devno:254:16:262144", "/dev/vdb");
        let never = |_: &str| false;
        let always = |_: &str| true;
        // Unknown disks, and disks whose cache is clean, are free to use.
        assert!(check_create(&st, &back.key, 0, &never).is_none());
        st.attached(&back, 1, "wa", 1, &cache, 10);
        // Dirty in cache 1, which is not resumed: refused without a cache
        // and for another cache, allowed for cache 1 (the after-crash path)
        // and while the cache is resumed (the kernel binds it).
        let e = check_create(&st, &back.key, 0, &never).unwrap();
        let msg = refusal(&e, "wa", "/dev/mapper/back1", 0);
        assert!(msg.contains("was last attached to cache 1 (/dev/vdb) as device 1"), "{msg}");
        assert!(msg.contains("writeboost-create wa 1 /dev/mapper/back1 1 && writeboost-resume-cache 1 /dev/vdb"), "{msg}");
        assert!(msg.contains("--force"), "{msg}");
        assert!(check_create(&st, &back.key, 2, &never).is_some());
        assert!(check_create(&st, &back.key, 1, &never).is_none());
        assert!(check_create(&st, &back.key, 0, &always).is_none());
        // --force: recorded, and found by resume-cache's check.
        assert!(used_without(&st, &cache.key).is_empty());
        st.used_without(&back.key, 20);
        st.used_without(&back.key, 30);
        assert_eq!(used_without(&st, &cache.key)[0].used_without_cache, Some(20));
        assert!(used_without(&st, "devno:254:32:1").is_empty());
        // A clean cache ends it all.
        st.cache_clean(&cache.key, 40);
        assert!(check_create(&st, &back.key, 0, &never).is_none());
        assert!(used_without(&st, &cache.key).is_empty());
        // Re-attaching replaces the entry.
        st.attached(&back, 3, "wc", 2, &disk("x", "/dev/x"), 50);
        assert_eq!(st.disks.len(), 1);
        assert_eq!(st.disks[0].cache_id, 2);
        assert!(st.stale.is_empty());
        // Attached to another cache while cache 2 may hold dirty data of it:
        // cache 2's data of it is stale, and resuming cache 2 warns.
        st.attached(&back, 3, "wc", 1, &cache, 60);
        assert_eq!(st.disks.len(), 1);
        assert_eq!(used_without(&st, "x")[0].used_without_cache, Some(60));
        assert!(used_without(&st, &cache.key).is_empty());
        st.cache_clean("x", 70);
        assert!(st.stale.is_empty());
    }

    #[test]
    fn identities_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let sys = Sys::new(dir.path());
        let mk = |d: &str, files: &[(&str, &str)]| {
            let b = dir.path().join("dev/block").join(d);
            for (f, v) in files {
                let p = b.join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, v).unwrap();
            }
        };
        mk("252:0", &[("size", "409600\n"), ("dm/name", "back1\n"), ("dm/uuid", "\n")]);
        mk("252:1", &[("size", "8\n"), ("dm/name", "lv\n"), ("dm/uuid", "LVM-abc\n")]);
        mk("8:0", &[("size", "100\n"), ("device/wwid", "naa.5000\n")]);
        mk("254:16", &[("size", "262144\n"), ("serial", "\n")]);
        mk("254:32", &[("size", "262144\n"), ("serial", "QM0001\n")]);
        let k = |s: &str| disk_key(&sys, s.parse().unwrap());
        assert_eq!(k("252:0"), "dm-name:back1");
        assert_eq!(k("252:1"), "dm-uuid:LVM-abc");
        assert_eq!(k("8:0"), "wwid:naa.5000");
        assert_eq!(k("254:16"), "devno:254:16:262144");
        assert_eq!(k("254:32"), "serial:QM0001");
        assert_eq!(k("9:9"), "devno:9:9:?");
    }
}
