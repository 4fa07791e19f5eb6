//! The migration daemon: its decisions (pure functions, unit-tested), its
//! loop over sysfs, and its process control (pid file, start, stop).
//!
//! Every second the daemon re-reads which caches and devices exist. For
//! each cache:
//!
//! * every `update_interval` s: `allow_migrate` = 0 if the backing device
//!   of any attached device is busier than that device's
//!   `migrate_threshold` (busy = io_ticks delta / elapsed wall time), else
//!   1; `force_migrate` = 1 forces 1, and a cache without devices gets 1;
//! * every `flush_current_buffer_interval` s: if `last_flushed_segment_id`
//!   did not move since the last check (idle), flush the RAM buffer;
//! * every `commit_super_block_interval` s: commit the superblock record.
//!
//! An interval of 0 disables that action for that cache.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::blockdev::DevNo;
use crate::diskstats::{self, Sample};
use crate::error::{Error, Result};
use crate::signals::Interrupt;
use crate::sysfs::{CacheNodes, DeviceNodes, Sys};

// ---------------------------------------------------------------------------
// Decisions.

/// The load of one attached device's backing disk.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceLoad {
    /// Device id.
    pub id: u8,
    /// Its backing device.
    pub backing: DevNo,
    /// Backing utilisation in %, `None` until two samples exist.
    pub util: Option<f64>,
    /// Its migrate_threshold in %.
    pub threshold: u8,
}

/// Whether a cache may migrate, and why; `None` when it cannot be told
/// yet (a device has no utilisation sample yet and none is over its
/// threshold).
pub fn decide(force: bool, loads: &[DeviceLoad]) -> Option<(bool, String)> {
    if force {
        return Some((true, "force_migrate is set".into()));
    }
    if loads.is_empty() {
        return Some((true, "no device is attached".into()));
    }
    if let Some(l) = loads.iter().find(|l| l.util.is_some_and(|u| u > f64::from(l.threshold))) {
        return Some((
            false,
            format!(
                "device {}: backing {} is {:.0}% busy, above its migrate_threshold {}%",
                l.id,
                l.backing,
                l.util.unwrap_or(0.0),
                l.threshold
            ),
        ));
    }
    if loads.iter().any(|l| l.util.is_none()) {
        return None;
    }
    let busiest = loads.iter().max_by(|a, b| a.util.partial_cmp(&b.util).unwrap_or(std::cmp::Ordering::Equal))?;
    Some((
        true,
        format!(
            "backing devices at most {:.0}% busy (device {}: {}, threshold {}%)",
            busiest.util.unwrap_or(0.0),
            busiest.id,
            busiest.backing,
            busiest.threshold
        ),
    ))
}

/// What the daemon does to a cache.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Write `allow_migrate`.
    SetAllowMigrate {
        /// Cache id.
        cache: u8,
        /// The new value.
        allow: bool,
        /// Why.
        reason: String,
    },
    /// Write 1 to `flush_current_buffer` (the cache was idle).
    FlushCurrentBuffer {
        /// Cache id.
        cache: u8,
    },
    /// Write 1 to `commit_super_block`.
    CommitSuperBlock {
        /// Cache id.
        cache: u8,
    },
}

/// A cache as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheView {
    /// Cache id.
    pub id: u8,
    /// Current allow_migrate.
    pub allow_migrate: bool,
    /// force_migrate.
    pub force_migrate: bool,
    /// Seconds; 0 = off.
    pub update_interval: u64,
    /// Seconds; 0 = off.
    pub flush_current_buffer_interval: u64,
    /// Seconds; 0 = off.
    pub commit_super_block_interval: u64,
    /// Progress of the flusher.
    pub last_flushed_segment_id: u64,
}

impl From<&CacheNodes> for CacheView {
    fn from(c: &CacheNodes) -> Self {
        CacheView {
            id: c.id,
            allow_migrate: c.allow_migrate,
            force_migrate: c.force_migrate,
            update_interval: c.update_interval,
            flush_current_buffer_interval: c.flush_current_buffer_interval,
            commit_super_block_interval: c.commit_super_block_interval,
            last_flushed_segment_id: c.last_flushed_segment_id,
        }
    }
}

/// A device as the daemon sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceView {
    /// Device id.
    pub id: u8,
    /// The cache it is bound to (0: none).
    pub cache_id: u8,
    /// Its backing device.
    pub backing: DevNo,
    /// Its migrate_threshold.
    pub threshold: u8,
}

impl From<&DeviceNodes> for DeviceView {
    fn from(d: &DeviceNodes) -> Self {
        DeviceView { id: d.id, cache_id: d.cache_id, backing: d.device_no, threshold: d.migrate_threshold }
    }
}

/// Tolerance for "an interval has passed", so a 1 s loop that wakes a few
/// ms early does not skip a whole period.
const SLACK_MS: u64 = 100;

fn due(last: Option<u64>, now: u64, interval_s: u64) -> bool {
    interval_s > 0 && last.is_none_or(|l| now + SLACK_MS >= l + interval_s * 1000)
}

#[derive(Default, Debug)]
struct CacheState {
    last_modulate: Option<u64>,
    last_flush_check: Option<u64>,
    flushed_seen: Option<u64>,
    last_commit: Option<u64>,
    /// Last io_ticks sample per device id (with the backing it was of).
    samples: HashMap<u8, (DevNo, Sample)>,
}

/// The daemon's memory between iterations.
#[derive(Default, Debug)]
pub struct Scheduler {
    caches: HashMap<u8, CacheState>,
}

impl Scheduler {
    /// One iteration at `now_ms` (a monotonic clock): the actions due.
    /// `io_ticks` gives a backing device's io_ticks (ms), `None` if unknown.
    pub fn step(
        &mut self,
        now_ms: u64,
        caches: &[CacheView],
        devices: &[DeviceView],
        io_ticks: &mut dyn FnMut(DevNo) -> Option<u64>,
    ) -> Vec<Action> {
        // Forget caches that are gone (a new cache with the same id starts afresh).
        self.caches.retain(|id, _| caches.iter().any(|c| c.id == *id));
        let mut actions = Vec::new();
        for c in caches {
            let st = self.caches.entry(c.id).or_default();
            let attached: Vec<&DeviceView> = devices.iter().filter(|d| d.cache_id == c.id).collect();
            st.samples.retain(|id, (b, _)| attached.iter().any(|d| d.id == *id && d.backing == *b));

            if due(st.last_modulate, now_ms, c.update_interval) {
                let mut loads = Vec::new();
                for d in &attached {
                    let cur = io_ticks(d.backing).map(|t| Sample { io_ticks_ms: t, at_ms: now_ms });
                    let prev = st.samples.get(&d.id).map(|(_, s)| *s);
                    let util = match (prev, cur) {
                        (Some(p), Some(c)) => diskstats::utilisation(p, c),
                        _ => None,
                    };
                    match cur {
                        Some(s) => {
                            st.samples.insert(d.id, (d.backing, s));
                        }
                        None => {
                            st.samples.remove(&d.id);
                        }
                    }
                    loads.push(DeviceLoad { id: d.id, backing: d.backing, util, threshold: d.threshold });
                }
                // Undecided: sample again at the next iteration.
                if let Some((allow, reason)) = decide(c.force_migrate, &loads) {
                    st.last_modulate = Some(now_ms);
                    if allow != c.allow_migrate {
                        actions.push(Action::SetAllowMigrate { cache: c.id, allow, reason });
                    }
                }
            }

            if due(st.last_flush_check, now_ms, c.flush_current_buffer_interval) {
                if st.flushed_seen == Some(c.last_flushed_segment_id) {
                    actions.push(Action::FlushCurrentBuffer { cache: c.id });
                }
                st.flushed_seen = Some(c.last_flushed_segment_id);
                st.last_flush_check = Some(now_ms);
            } else if c.flush_current_buffer_interval == 0 {
                st.flushed_seen = None;
                st.last_flush_check = None;
            }

            if due(st.last_commit, now_ms, c.commit_super_block_interval) {
                // Not at start-up: the first commit comes one interval later.
                if st.last_commit.is_some() {
                    actions.push(Action::CommitSuperBlock { cache: c.id });
                }
                st.last_commit = Some(now_ms);
            } else if c.commit_super_block_interval == 0 {
                st.last_commit = None;
            }
        }
        actions
    }

    /// Records the flusher's progress after the daemon's own flush, so its
    /// own segment does not count as activity.
    pub fn flushed(&mut self, cache: u8, last_flushed_segment_id: u64) {
        if let Some(st) = self.caches.get_mut(&cache) {
            st.flushed_seen = Some(last_flushed_segment_id);
        }
    }
}

// ---------------------------------------------------------------------------
// The loop.

/// How the daemon runs.
#[derive(Clone, Debug)]
pub struct RunOpts {
    /// Time between iterations.
    pub tick: Duration,
    /// One iteration, then exit.
    pub once: bool,
    /// Log every flush and commit, not only changes of allow_migrate.
    pub verbose: bool,
}

fn log(msg: &str) {
    // Under systemd the journal adds the time itself.
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        println!("{}", msg);
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        println!("{} {}", crate::ops::utc(now).trim_end_matches(" UTC"), msg);
    }
}

/// Runs the daemon in the foreground until interrupted (SIGTERM, SIGINT).
pub fn run(sys: &Sys, intr: &Interrupt, o: &RunOpts) -> Result<()> {
    let clock = Instant::now();
    let mut sched = Scheduler::default();
    let mut waiting_for_module = false;
    log(&format!("writeboost-daemon running (pid {})", std::process::id()));
    loop {
        if !sys.module_loaded() {
            if !waiting_for_module {
                log("the dm_writeboost module is not loaded; waiting for it");
                waiting_for_module = true;
            }
        } else {
            waiting_for_module = false;
            iterate(sys, &mut sched, clock.elapsed().as_millis() as u64, o.verbose);
        }
        if o.once || !intr.sleep(o.tick) {
            break;
        }
    }
    log("writeboost-daemon stopped");
    Ok(())
}

/// One iteration over what exists now.
fn iterate(sys: &Sys, sched: &mut Scheduler, now_ms: u64, verbose: bool) {
    // Things vanish while we read (a cache freed, a device removed): skip them.
    let caches: Vec<CacheView> = sys.cache_ids().into_iter().filter_map(|id| sys.cache(id).ok().flatten()).map(|c| (&c).into()).collect();
    let devices: Vec<DeviceView> = sys.device_ids().into_iter().filter_map(|id| sys.device(id).ok().flatten()).map(|d| (&d).into()).collect();
    let mut stats: Option<Option<HashMap<DevNo, procfs_core::DiskStat>>> = None;
    let mut io_ticks = |d: DevNo| -> Option<u64> {
        let s = stats.get_or_insert_with(|| match diskstats::read() {
            Ok(m) => Some(m),
            Err(e) => {
                log(&format!("warning: {}", e));
                None
            }
        });
        s.as_ref()?.get(&d).map(|x| x.time_in_progress)
    };
    for a in sched.step(now_ms, &caches, &devices, &mut io_ticks) {
        match a {
            Action::SetAllowMigrate { cache, allow, reason } => match sys.set_cache_value(cache, "allow_migrate", u64::from(allow)) {
                Ok(()) => log(&format!("cache {}: allow_migrate {} -> {}: {}", cache, u8::from(!allow), u8::from(allow), reason)),
                Err(e) => log(&format!("cache {}: {}", cache, e)),
            },
            Action::FlushCurrentBuffer { cache } => match sys.set_cache_value(cache, "flush_current_buffer", 1) {
                Ok(()) => {
                    if verbose {
                        log(&format!("cache {}: idle, flushed the RAM buffer", cache));
                    }
                    if let Ok(v) = sys.cache_value(cache, "last_flushed_segment_id") {
                        sched.flushed(cache, v);
                    }
                }
                Err(e) => log(&format!("cache {}: {}", cache, e)),
            },
            Action::CommitSuperBlock { cache } => match sys.set_cache_value(cache, "commit_super_block", 1) {
                Ok(()) => {
                    if verbose {
                        log(&format!("cache {}: committed the superblock record", cache));
                    }
                }
                Err(e) => log(&format!("cache {}: {}", cache, e)),
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Process control.

/// The default pid file.
pub fn default_pid_file() -> PathBuf {
    crate::lock::run_dir().join("daemon.pid")
}

/// The pid file, locked by the running daemon for its whole life (so a
/// stale file never looks like a running daemon).
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl PidFile {
    /// Locks `path` and writes our pid into it; fails if another daemon
    /// holds it.
    pub fn acquire(path: &Path) -> Result<PidFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("cannot open pid file", path, e))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(mut fl) => {
                let _ = fl.set_len(0);
                let _ = fl.seek(SeekFrom::Start(0));
                fl.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(|e| Error::io("cannot write pid file", path, e))?;
                Ok(PidFile { path: path.to_path_buf(), _lock: fl })
            }
            Err((_, Errno::EWOULDBLOCK)) => Err(Error::failed(format!(
                "writeboost-daemon is already running (pid {}, pid file {})",
                running(path).map_or_else(|| "?".into(), |p| p.to_string()),
                path.display()
            ))),
            Err((_, e)) => Err(Error::io("cannot lock pid file", path, e.into())),
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The pid of the daemon holding `path`, if one is running.
pub fn running(path: &Path) -> Option<u32> {
    let mut f = File::open(path).ok()?;
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    match Flock::lock(f, FlockArg::LockSharedNonblock) {
        Ok(_) => None, // nobody holds it: stale
        Err((_, Errno::EWOULDBLOCK)) => Some(s.trim().parse().unwrap_or(0)),
        Err(_) => None,
    }
}

/// Starts the daemon in the background: `exe run` in a new session, output
/// appended to `log_file`. Returns its pid once it holds the pid file.
pub fn start(exe: &Path, run_args: &[String], pid_file: &Path, log_file: &Path) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    if let Some(pid) = running(pid_file) {
        return Err(Error::failed(format!("writeboost-daemon is already running (pid {})", pid)));
    }
    if let Some(dir) = log_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let log = OpenOptions::new().create(true).append(true).open(log_file).map_err(|e| Error::io("cannot open log file", log_file, e))?;
    let log2 = log.try_clone().map_err(|e| Error::io("cannot open log file", log_file, e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("run").args(run_args).arg("--pid-file").arg(pid_file).stdin(std::process::Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid() is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("cannot start", exe, e))?;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Some(pid) = running(pid_file) {
            if pid == child.id() {
                return Ok(pid);
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            let tail = std::fs::read_to_string(log_file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(Error::failed(format!("writeboost-daemon exited at once ({}): {}", st, tail.join(" / "))));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::failed(format!("writeboost-daemon (pid {}) did not take its pid file {} within 10 s", child.id(), pid_file.display())))
}

/// Stops the daemon holding `pid_file` (SIGTERM) and waits for it.
/// Returns the pid it stopped, `None` if none was running.
pub fn stop(pid_file: &Path, timeout: Duration) -> Result<Option<u32>> {
    let Some(pid) = running(pid_file) else { return Ok(None) };
    if pid == 0 {
        return Err(Error::failed(format!("{} is locked but holds no pid", pid_file.display())));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| Error::failed(format!("cannot signal writeboost-daemon (pid {}): {}", pid, e.desc())))?;
    let t = Instant::now();
    while t.elapsed() < timeout {
        if running(pid_file).is_none() {
            return Ok(Some(pid));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::failed(format!("writeboost-daemon (pid {}) did not stop within {} s", pid, timeout.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VDA: DevNo = DevNo { major: 254, minor: 0 };
    const VDC: DevNo = DevNo { major: 254, minor: 32 };

    fn load(id: u8, util: Option<f64>, threshold: u8) -> DeviceLoad {
        DeviceLoad { id, backing: VDA, util, threshold }
    }

    #[test]
    fn decisions() {
        assert!(decide(false, &[]).unwrap().0);
        assert_eq!(decide(true, &[load(1, Some(100.0), 10)]).unwrap(), (true, "force_migrate is set".into()));
        assert!(!decide(false, &[load(1, Some(80.0), 70)]).unwrap().0);
        assert!(decide(false, &[load(1, Some(70.0), 70)]).unwrap().0);
        assert!(!decide(false, &[load(1, Some(10.0), 70), load(2, Some(95.0), 90)]).unwrap().0);
        // Unknown utilisation: undecided, unless someone is already over.
        assert_eq!(decide(false, &[load(1, None, 70)]), None);
        assert!(!decide(false, &[load(1, None, 70), load(2, Some(99.0), 50)]).unwrap().0);
        assert!(decide(false, &[load(1, Some(0.0), 0)]).unwrap().0);
        assert!(decide(false, &[load(1, Some(100.0), 100)]).unwrap().0);
        let (_, why) = decide(false, &[load(3, Some(97.4), 70)]).unwrap();
        assert_eq!(why, "device 3: backing 254:0 is 97% busy, above its migrate_threshold 70%");
    }

    fn cache(id: u8) -> CacheView {
        CacheView {
            id,
            allow_migrate: false,
            force_migrate: false,
            update_interval: 1,
            flush_current_buffer_interval: 0,
            commit_super_block_interval: 0,
            last_flushed_segment_id: 0,
        }
    }

    fn dev(id: u8, cache_id: u8, backing: DevNo) -> DeviceView {
        DeviceView { id, cache_id, backing, threshold: 70 }
    }

    #[test]
    fn modulation_follows_the_load() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        let devs = [dev(1, 1, VDA), dev(2, 0, VDC)];
        let mut ticks = 0u64;
        // First sample: undecided, nothing written.
        assert!(s.step(0, &[c.clone()], &devs, &mut |_| Some(ticks)).is_empty());
        // Busy 90 % of the next second: stays 0 (it is 0 already).
        ticks = 900;
        assert!(s.step(1000, &[c.clone()], &devs, &mut |_| Some(ticks)).is_empty());
        // Idle: allow.
        let a = s.step(2000, &[c.clone()], &devs, &mut |_| Some(ticks));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { cache: 1, allow: true, .. }]), "{a:?}");
        c.allow_migrate = true;
        // Busy again: deny.
        ticks += 1000;
        let a = s.step(3000, &[c.clone()], &devs, &mut |_| Some(ticks));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { cache: 1, allow: false, .. }]), "{a:?}");
    }

    #[test]
    fn utilisation_uses_the_real_elapsed_time() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.allow_migrate = true;
        let devs = [dev(1, 1, VDA)];
        s.step(0, &[c.clone()], &devs, &mut |_| Some(0));
        // 1500 ms busy, but 3 s passed (the daemon was late): 50 % <= 70 %.
        assert!(s.step(3000, &[c.clone()], &devs, &mut |_| Some(1500)).is_empty());
        // Against the nominal 1 s interval it would have been 150 %.
    }

    #[test]
    fn update_interval_zero_disables_modulation() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.update_interval = 0;
        for t in 0..10 {
            assert!(s.step(t * 1000, &[c.clone()], &[], &mut |_| Some(0)).is_empty());
        }
        // Enabled again later: a cache without devices gets 1 at once.
        c.update_interval = 5;
        let a = s.step(10_000, &[c.clone()], &[], &mut |_| Some(0));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { allow: true, .. }]), "{a:?}");
    }

    #[test]
    fn update_interval_is_respected() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.update_interval = 3;
        c.allow_migrate = true;
        let devs = [dev(1, 1, VDA)];
        let mut calls = 0;
        let mut f = |_| {
            calls += 1;
            Some(0)
        };
        for t in 0..7 {
            s.step(t * 1000, &[c.clone()], &devs, &mut f);
        }
        // Sampled at 0 (undecided), 1 (decided), 4, and not at 2, 3, 5, 6.
        assert_eq!(calls, 3);
    }

    #[test]
    fn force_migrate_and_no_devices() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.force_migrate = true;
        let a = s.step(0, &[c.clone()], &[dev(1, 1, VDA)], &mut |_| Some(0));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { allow: true, .. }]));
        let mut s = Scheduler::default();
        let a = s.step(0, &[cache(2)], &[dev(1, 1, VDA)], &mut |_| Some(0));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { cache: 2, allow: true, .. }]));
    }

    #[test]
    fn idle_flush_only_when_nothing_was_flushed() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.update_interval = 0;
        c.flush_current_buffer_interval = 2;
        c.last_flushed_segment_id = 5;
        let f = |s: &mut Scheduler, t: u64, c: &CacheView| s.step(t, std::slice::from_ref(c), &[], &mut |_| None);
        assert!(f(&mut s, 0, &c).is_empty()); // first look
        assert!(f(&mut s, 1000, &c).is_empty()); // not due
        assert_eq!(f(&mut s, 2000, &c), vec![Action::FlushCurrentBuffer { cache: 1 }]); // idle
        s.flushed(1, 6);
        c.last_flushed_segment_id = 6;
        assert!(f(&mut s, 3000, &c).is_empty());
        c.last_flushed_segment_id = 9; // busy: the flusher moved on its own
        assert!(f(&mut s, 4000, &c).is_empty());
        assert_eq!(f(&mut s, 6000, &c), vec![Action::FlushCurrentBuffer { cache: 1 }]);
        // 0 disables it.
        c.flush_current_buffer_interval = 0;
        for t in 7..20 {
            assert!(f(&mut s, t * 1000, &c).is_empty());
        }
    }

    #[test]
    fn periodic_commit() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.update_interval = 0;
        c.commit_super_block_interval = 3;
        let mut n = 0;
        for t in 0..=9 {
            n += s.step(t * 1000, &[c.clone()], &[], &mut |_| None).len();
        }
        assert_eq!(n, 3); // at 3, 6 and 9 s
        c.commit_super_block_interval = 0;
        for t in 10..30 {
            assert!(s.step(t * 1000, &[c.clone()], &[], &mut |_| None).is_empty());
        }
    }

    #[test]
    fn topology_changes_between_iterations() {
        let mut s = Scheduler::default();
        let mut c = cache(1);
        c.allow_migrate = true;
        // Device 1 on cache 1, sampled.
        s.step(0, &[c.clone()], &[dev(1, 1, VDA)], &mut |_| Some(0));
        // It leaves; device 2 arrives: new device, new baseline, undecided.
        assert!(s.step(1000, &[c.clone()], &[dev(2, 1, VDC)], &mut |_| Some(5000)).is_empty());
        // The next second it is measured: busy, deny.
        let a = s.step(2000, &[c.clone()], &[dev(2, 1, VDC)], &mut |_| Some(6000));
        assert!(matches!(&a[..], [Action::SetAllowMigrate { allow: false, .. }]), "{a:?}");
        // The cache goes away and comes back: state starts afresh.
        s.step(3000, &[], &[], &mut |_| None);
        assert!(s.caches.is_empty());
    }

    #[test]
    fn unknown_backing_in_diskstats() {
        let mut s = Scheduler::default();
        let c = cache(1);
        for t in 0..5 {
            assert!(s.step(t * 1000, std::slice::from_ref(&c), &[dev(1, 1, VDA)], &mut |_| None).is_empty());
        }
    }

    #[test]
    fn pid_file_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.pid");
        assert_eq!(running(&p), None);
        let pf = PidFile::acquire(&p).unwrap();
        assert_eq!(running(&p), Some(std::process::id()));
        let e = PidFile::acquire(&p).err().unwrap();
        assert!(e.to_string().contains("already running"), "{e}");
        drop(pf);
        assert!(!p.exists());
        // A stale file (nobody holds its lock) is not a running daemon.
        std::fs::write(&p, "12345\n").unwrap();
        assert_eq!(running(&p), None);
        assert_eq!(stop(&p, Duration::from_secs(1)).unwrap(), None);
    }
}
