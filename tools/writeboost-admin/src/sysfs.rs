//! The module's sysfs nodes: `/sys/module/dm_writeboost/devices/<id>/` and
//! `/sys/module/dm_writeboost/caches/<id>/`, plus the block device nodes
//! under `/sys/dev/block/`.
//!
//! Writes capture the kernel's explanation of a refusal (EINVAL on an
//! out-of-range value logs one `dm_writeboost: ` line).
//!
//! Every read and write of a module node holds the shared
//! [`LockKind::Sysfs`] lock, and what removes a directory (`free_cache`,
//! removing a device) holds it exclusively. Modules before commit 61aa247
//! removed those directories while holding the registry mutex that the
//! node handlers also take, so a read racing with the removal hung both
//! for good; with the lock the tools and the daemon never race like that,
//! whatever module they run with.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::blockdev::DevNo;
use crate::error::{Error, Result};
use crate::kmsg::KernelLog;
use crate::lock::{self, Lock, LockKind};
use crate::signals::Interrupt;

/// Where sysfs is (`/sys`, or `$WRITEBOOST_SYSFS` for tests).
#[derive(Clone, Debug)]
pub struct Sys {
    root: PathBuf,
    /// Where the sysfs lock lives (`None`: no locking, for tests).
    lock_dir: Option<PathBuf>,
}

/// The sysfs view of a device (`devices/<id>/`, after `add_sysfs`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeviceNodes {
    /// The device id.
    pub id: u8,
    /// The cache its I/O goes through (0: none).
    pub cache_id: u8,
    /// The writeboost device itself.
    pub dev: DevNo,
    /// The backing device.
    pub device_no: DevNo,
    /// Backing utilisation (%) above which the daemon stops migration.
    pub migrate_threshold: u8,
    /// Dirty 4 KiB lines of this device.
    pub nr_dirty_caches: u64,
}

/// The sysfs view of a resumed cache (`caches/<id>/`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CacheNodes {
    /// The cache id.
    pub id: u8,
    /// The cache device (from the `device` link).
    pub device: Option<DevNo>,
    /// Its kernel name (`vdb`).
    pub device_name: Option<String>,
    /// Migration allowed (set by the daemon or by hand).
    pub allow_migrate: bool,
    /// Migration forced (overrides the daemon).
    pub force_migrate: bool,
    /// Deadline of a deferred FLUSH/FUA, ms.
    pub barrier_deadline_ms: u64,
    /// Segments per migration round.
    pub nr_max_batched_migration: u64,
    /// The daemon's modulation period, s (0: off).
    pub update_interval: u64,
    /// The daemon's superblock-commit period, s (0: off).
    pub commit_super_block_interval: u64,
    /// The daemon's idle-flush period, s (0: off).
    pub flush_current_buffer_interval: u64,
    /// Newest segment on the cache device.
    pub last_flushed_segment_id: u64,
    /// Newest segment written back.
    pub last_migrated_segment_id: u64,
    /// Dirty lines of all devices.
    pub nr_dirty_caches: u64,
}

/// The tunables of a cache that can be written, with their ranges.
pub const CACHE_TUNABLES: &[(&str, u64, u64)] = &[
    ("allow_migrate", 0, 1),
    ("force_migrate", 0, 1),
    ("barrier_deadline_ms", 1, 10_000),
    ("nr_max_batched_migration", 1, 32),
    ("update_interval", 0, 3600),
    ("commit_super_block_interval", 0, 3600),
    ("flush_current_buffer_interval", 0, 3600),
];

impl Sys {
    /// sysfs at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sys { root: root.into(), lock_dir: None }
    }

    /// `/sys`, or `$WRITEBOOST_SYSFS`, with the sysfs lock in the tools'
    /// run directory.
    pub fn from_env() -> Self {
        Sys {
            root: std::env::var_os("WRITEBOOST_SYSFS").unwrap_or_else(|| "/sys".into()).into(),
            lock_dir: Some(lock::run_dir()),
        }
    }

    /// The shared sysfs lock, for one read or write. Without a usable run
    /// directory (not root) it is skipped.
    fn shared(&self) -> Option<Lock> {
        lock::acquire_shared_in(self.lock_dir.as_ref()?, LockKind::Sysfs).ok()
    }

    /// The exclusive sysfs lock, held around an operation that removes a
    /// module sysfs directory.
    pub fn exclusive(&self, intr: &Interrupt) -> Result<Option<Lock>> {
        match &self.lock_dir {
            Some(d) => lock::acquire_in(d, LockKind::Sysfs, intr, None).map(Some),
            None => Ok(None),
        }
    }

    /// `/sys/module/dm_writeboost`.
    pub fn module_dir(&self) -> PathBuf {
        self.root.join("module/dm_writeboost")
    }

    /// Whether the module is loaded.
    pub fn module_loaded(&self) -> bool {
        self.module_dir().is_dir()
    }

    /// Fails with a clear message when the module is not loaded.
    pub fn require_module(&self) -> Result<()> {
        if self.module_loaded() {
            Ok(())
        } else {
            Err(Error::invalid("the dm_writeboost kernel module is not loaded (load it with: modprobe dm-writeboost)"))
        }
    }

    /// `devices/<id>/`.
    pub fn device_dir(&self, id: u8) -> PathBuf {
        self.module_dir().join("devices").join(id.to_string())
    }

    /// `caches/<id>/`.
    pub fn cache_dir(&self, id: u8) -> PathBuf {
        self.module_dir().join("caches").join(id.to_string())
    }

    /// `/sys/dev/block/<maj:min>/`.
    pub fn block_dir(&self, d: DevNo) -> PathBuf {
        self.root.join("dev/block").join(d.to_string())
    }

    /// The kernel name of a block device (`vda`, `dm-1`).
    pub fn kname(&self, d: DevNo) -> Option<String> {
        std::fs::canonicalize(self.block_dir(d)).ok()?.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// The device-mapper name of a DM device.
    pub fn dm_name(&self, d: DevNo) -> Option<String> {
        std::fs::read_to_string(self.block_dir(d).join("dm/name")).ok().map(|s| s.trim().to_string())
    }

    /// A path for a device number: `/dev/mapper/NAME` for a DM device,
    /// else `/dev/KNAME`.
    pub fn dev_path(&self, d: DevNo) -> Option<String> {
        if let Some(n) = self.dm_name(d) {
            return Some(format!("/dev/mapper/{}", n));
        }
        self.kname(d).map(|k| format!("/dev/{}", k))
    }

    /// Ids present under `caches/` or `devices/` (sorted).
    fn ids(&self, sub: &str) -> Vec<u8> {
        let mut v: Vec<u8> = std::fs::read_dir(self.module_dir().join(sub))
            .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Ids of the resumed caches.
    pub fn cache_ids(&self) -> Vec<u8> {
        self.ids("caches")
    }

    /// Ids of the devices with a sysfs directory.
    pub fn device_ids(&self) -> Vec<u8> {
        self.ids("devices")
    }

    /// Reads a file and trims it.
    pub fn read_str(&self, path: &Path) -> Result<String> {
        let _l = self.shared();
        std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| Error::io("cannot read", path, e))
    }

    /// Reads a decimal number.
    pub fn read_u64(&self, path: &Path) -> Result<u64> {
        let s = self.read_str(path)?;
        s.parse().map_err(|_| Error::failed(format!("{}: '{}' is not a number", path.display(), s)))
    }

    /// Writes `value` to a sysfs node. A refusal carries the kernel's log
    /// line that says why.
    pub fn write(&self, path: &Path, value: &str) -> Result<()> {
        let _l = self.shared();
        let mut klog = KernelLog::open();
        std::fs::write(path, format!("{}\n", value)).map_err(|e| {
            Error::io(format!("cannot write {} to", value), path, e).with_kernel(klog.new_lines())
        })
    }

    /// The sysfs nodes of device `id`, `None` without a directory.
    pub fn device(&self, id: u8) -> Result<Option<DeviceNodes>> {
        let d = self.device_dir(id);
        if !d.is_dir() {
            return Ok(None);
        }
        let devno = |n: &str| -> Result<DevNo> {
            let p = d.join(n);
            self.read_str(&p)?.parse().map_err(|e: String| Error::failed(format!("{}: {}", p.display(), e)))
        };
        Ok(Some(DeviceNodes {
            id,
            cache_id: self.read_u64(&d.join("cache_id"))? as u8,
            dev: devno("dev")?,
            device_no: devno("device_no")?,
            migrate_threshold: self.read_u64(&d.join("migrate_threshold"))? as u8,
            nr_dirty_caches: self.read_u64(&d.join("nr_dirty_caches"))?,
        }))
    }

    /// The sysfs nodes of cache `id`, `None` if it is not resumed.
    pub fn cache(&self, id: u8) -> Result<Option<CacheNodes>> {
        let d = self.cache_dir(id);
        if !d.is_dir() {
            return Ok(None);
        }
        let n = |name: &str| self.read_u64(&d.join(name));
        let device: Option<DevNo> = std::fs::read_to_string(d.join("device/dev")).ok().and_then(|s| s.trim().parse().ok());
        Ok(Some(CacheNodes {
            id,
            device,
            device_name: device.and_then(|x| self.kname(x)),
            allow_migrate: n("allow_migrate")? != 0,
            force_migrate: n("force_migrate")? != 0,
            barrier_deadline_ms: n("barrier_deadline_ms")?,
            nr_max_batched_migration: n("nr_max_batched_migration")?,
            update_interval: n("update_interval")?,
            commit_super_block_interval: n("commit_super_block_interval")?,
            flush_current_buffer_interval: n("flush_current_buffer_interval")?,
            last_flushed_segment_id: n("last_flushed_segment_id")?,
            last_migrated_segment_id: n("last_migrated_segment_id")?,
            nr_dirty_caches: n("nr_dirty_caches")?,
        }))
    }

    /// Reads one node of cache `id`.
    pub fn cache_value(&self, id: u8, node: &str) -> Result<u64> {
        self.read_u64(&self.cache_dir(id).join(node))
    }

    /// Writes one node of cache `id`.
    pub fn set_cache_value(&self, id: u8, node: &str, value: u64) -> Result<()> {
        self.write(&self.cache_dir(id).join(node), &value.to_string())
    }

    /// Reads one node of device `id`.
    pub fn device_value(&self, id: u8, node: &str) -> Result<u64> {
        self.read_u64(&self.device_dir(id).join(node))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake sysfs tree for tests.
    use super::*;

    /// Creates `module/dm_writeboost/devices/<id>/` with these values.
    pub fn add_device(root: &Path, id: u8, cache_id: u8, dev: &str, device_no: &str, threshold: u8, dirty: u64) {
        let d = root.join("module/dm_writeboost/devices").join(id.to_string());
        std::fs::create_dir_all(&d).unwrap();
        for (n, v) in [
            ("cache_id", cache_id.to_string()),
            ("dev", dev.to_string()),
            ("device_no", device_no.to_string()),
            ("migrate_threshold", threshold.to_string()),
            ("nr_dirty_caches", dirty.to_string()),
        ] {
            std::fs::write(d.join(n), format!("{}\n", v)).unwrap();
        }
    }

    /// Creates `module/dm_writeboost/caches/<id>/` with default values.
    pub fn add_cache(root: &Path, id: u8) {
        let d = root.join("module/dm_writeboost/caches").join(id.to_string());
        std::fs::create_dir_all(&d).unwrap();
        for (n, v) in [
            ("allow_migrate", "0"),
            ("force_migrate", "0"),
            ("barrier_deadline_ms", "3"),
            ("nr_max_batched_migration", "1"),
            ("update_interval", "1"),
            ("commit_super_block_interval", "0"),
            ("flush_current_buffer_interval", "0"),
            ("last_flushed_segment_id", "0"),
            ("last_migrated_segment_id", "0"),
            ("nr_dirty_caches", "0"),
            ("flush_current_buffer", "0"),
            ("commit_super_block", "0"),
        ] {
            std::fs::write(d.join(n), format!("{}\n", v)).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_devices_and_caches() {
        let t = tempfile::tempdir().unwrap();
        let sys = Sys::new(t.path());
        assert!(!sys.module_loaded());
        assert_eq!(
            sys.require_module().unwrap_err().to_string(),
            "the dm_writeboost kernel module is not loaded (load it with: modprobe dm-writeboost)"
        );
        fake::add_device(t.path(), 5, 1, "253:1", "254:0", 70, 12);
        fake::add_device(t.path(), 12, 0, "253:2", "254:16", 40, 0);
        fake::add_cache(t.path(), 1);
        assert!(sys.module_loaded());
        assert_eq!(sys.device_ids(), vec![5, 12]);
        assert_eq!(sys.cache_ids(), vec![1]);
        let d = sys.device(5).unwrap().unwrap();
        assert_eq!(d.cache_id, 1);
        assert_eq!(d.device_no, DevNo { major: 254, minor: 0 });
        assert_eq!(d.nr_dirty_caches, 12);
        assert!(sys.device(6).unwrap().is_none());
        let c = sys.cache(1).unwrap().unwrap();
        assert_eq!(c.update_interval, 1);
        assert!(!c.allow_migrate);
        assert_eq!(c.device, None);
        sys.set_cache_value(1, "allow_migrate", 1).unwrap();
        assert_eq!(sys.cache_value(1, "allow_migrate").unwrap(), 1);
        assert!(sys.cache(2).unwrap().is_none());
    }
}
