//! Locks that serialise concurrent tool runs.
//!
//! The manager's `cache_id_ptr` is one shared cursor: `switch_to 3` then
//! `free_cache` from one tool must not interleave with `switch_to 1` from
//! another. Every sequence of manager messages holds the **manager lock**.
//! Table changes of one device hold its **device lock**, and everything that
//! changes a cache (resume, free, a detach draining it) holds its **cache
//! lock**. Locks are `flock(2)` locks on files in `/run/writeboost/` (or
//! `$WRITEBOOST_RUN_DIR`), released when the tool exits, even by a crash.
//! They are always taken in the order device, cache, manager; the state
//! file's lock ([`LockKind::State`]) is taken last and held for a moment.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};
use crate::signals::Interrupt;

/// The directory of the lock files and the daemon's pid file.
pub fn run_dir() -> PathBuf {
    std::env::var_os("WRITEBOOST_RUN_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/writeboost"))
}

/// A held lock; dropping it releases the lock.
pub struct Lock {
    _flock: Flock<File>,
    what: String,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lock({})", self.what)
    }
}

/// What a lock protects.
#[derive(Clone, Copy, Debug)]
pub enum LockKind {
    /// The manager (its cache_id_ptr).
    Mgr,
    /// One cache id.
    Cache(u8),
    /// One device id.
    Device(u8),
    /// The module's sysfs directories: held shared around every read or
    /// write of a node, exclusive around what removes a directory, so the
    /// tools never read a node while its directory goes away (older modules
    /// deadlocked on that, see [`crate::sysfs`]).
    Sysfs,
    /// The state file (see [`crate::state`]): held only around reading,
    /// changing and replacing it, with no other lock taken meanwhile.
    State,
}

impl LockKind {
    fn file_name(self) -> String {
        match self {
            LockKind::Mgr => "mgr.lock".into(),
            LockKind::Cache(id) => format!("cache-{}.lock", id),
            LockKind::Device(id) => format!("device-{}.lock", id),
            LockKind::Sysfs => "sysfs.lock".into(),
            LockKind::State => "state.lock".into(),
        }
    }

    fn describe(self) -> String {
        match self {
            LockKind::Mgr => "the writeboost manager".into(),
            LockKind::Cache(id) => format!("cache {}", id),
            LockKind::Device(id) => format!("device {}", id),
            LockKind::Sysfs => "the writeboost sysfs directories".into(),
            LockKind::State => "the writeboost state file".into(),
        }
    }
}

/// Takes a lock, waiting for the holder (and saying who it is) unless the
/// wait is interrupted or exceeds `timeout`.
pub fn acquire(kind: LockKind, intr: &Interrupt, timeout: Option<Duration>) -> Result<Lock> {
    acquire_in(&run_dir(), kind, intr, timeout)
}

/// [`acquire`] with an explicit directory.
pub fn acquire_in(dir: &Path, kind: LockKind, intr: &Interrupt, timeout: Option<Duration>) -> Result<Lock> {
    acquire_exclusive(dir, kind, intr, timeout)
}

/// Takes a shared lock (several holders at once) in `dir`, waiting without
/// a message: exclusive holders of the kinds used shared hold them only for
/// a moment.
pub fn acquire_shared_in(dir: &Path, kind: LockKind) -> Result<Lock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let path = dir.join(kind.file_name());
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("cannot open lock file", &path, e))?;
    loop {
        match Flock::lock(file, FlockArg::LockShared) {
            Ok(fl) => return Ok(Lock { _flock: fl, what: kind.describe() }),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, e)) => return Err(Error::io("cannot lock", &path, e.into())),
        }
    }
}

fn acquire_exclusive(dir: &Path, kind: LockKind, intr: &Interrupt, timeout: Option<Duration>) -> Result<Lock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let path = dir.join(kind.file_name());
    let start = Instant::now();
    let mut told = false;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("cannot open lock file", &path, e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut fl) => {
                // Who holds it, for the messages of others who wait.
                let me = format!("{} {}\n", std::process::id(), program_name());
                let _ = fl.set_len(0);
                let _ = fl.seek(SeekFrom::Start(0));
                let _ = fl.write_all(me.as_bytes());
                return Ok(Lock { _flock: fl, what: kind.describe() });
            }
            Err((mut file, Errno::EWOULDBLOCK)) => {
                if !told && !matches!(kind, LockKind::Sysfs) {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    eprintln!(
                        "waiting for another writeboost command using {}{}",
                        kind.describe(),
                        if holder.is_empty() { String::new() } else { format!(" (pid {})", holder) }
                    );
                    told = true;
                }
                if intr.is_set() {
                    return Err(Error::Interrupted(format!("while waiting for the lock of {}; nothing was changed", kind.describe())));
                }
                if timeout.is_some_and(|t| start.elapsed() >= t) {
                    return Err(Error::failed(format!("{} is busy: another writeboost command holds its lock ({})", kind.describe(), path.display())));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, e)) => return Err(Error::io("cannot lock", &path, e.into())),
        }
    }
}

/// The name of the running program, for the lock file.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "writeboost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let intr = Interrupt::new_unregistered();
        let l = acquire_in(dir.path(), LockKind::Mgr, &intr, None).unwrap();
        let holder = std::fs::read_to_string(dir.path().join("mgr.lock")).unwrap();
        assert!(holder.starts_with(&format!("{} ", std::process::id())), "{holder}");
        // flock locks are per open file: a second open in the same process
        // conflicts, like another process would.
        let e = acquire_in(dir.path(), LockKind::Mgr, &intr, Some(Duration::from_millis(250))).unwrap_err();
        assert!(e.to_string().contains("the writeboost manager is busy"), "{e}");
        // Other locks are independent.
        let _c = acquire_in(dir.path(), LockKind::Cache(3), &intr, Some(Duration::ZERO)).unwrap();
        drop(l);
        let _l = acquire_in(dir.path(), LockKind::Mgr, &intr, Some(Duration::ZERO)).unwrap();
    }

    #[test]
    fn shared_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let intr = Interrupt::new_unregistered();
        let a = acquire_shared_in(dir.path(), LockKind::Sysfs).unwrap();
        let b = acquire_shared_in(dir.path(), LockKind::Sysfs).unwrap();
        assert!(acquire_in(dir.path(), LockKind::Sysfs, &intr, Some(Duration::ZERO)).is_err());
        drop(a);
        drop(b);
        let x = acquire_in(dir.path(), LockKind::Sysfs, &intr, Some(Duration::ZERO)).unwrap();
        let t = std::thread::spawn({
            let d = dir.path().to_path_buf();
            move || acquire_shared_in(&d, LockKind::Sysfs).map(drop)
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!t.is_finished(), "a shared lock was granted while the exclusive one is held");
        drop(x);
        t.join().unwrap().unwrap();
    }

    #[test]
    fn interrupted_wait_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let intr = Interrupt::new_unregistered();
        let _l = acquire_in(dir.path(), LockKind::Device(4), &intr, None).unwrap();
        intr.set();
        let e = acquire_in(dir.path(), LockKind::Device(4), &intr, None).unwrap_err();
        assert_eq!(e.exit_code(), 130);
        assert!(e.to_string().contains("lock of device 4; nothing was changed"), "{e}");
    }
}
