//! `writeboost-status`: everything about the manager, the caches, the
//! devices and the daemon, for people and (`--json`) for programs.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::blockdev::DevNo;
use crate::cli::Ctx;
use crate::error::Result;
use crate::ops::{size, MgrSession};
use crate::status::{CacheStatus, Counter};
use crate::sysfs::CacheNodes;
use crate::topology;

/// The whole picture.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The dm_writeboost module is loaded.
    pub module_loaded: bool,
    /// The manager device, if it exists.
    pub manager: Option<ManagerReport>,
    /// The migration daemon.
    pub daemon: DaemonReport,
    /// Resumed caches.
    pub caches: Vec<CacheReport>,
    /// writeboost devices.
    pub devices: Vec<DeviceReport>,
    /// writeboost devices of the dm-writeboost 2.2 table form (each with
    /// its private cache).
    pub devices_22: Vec<Device22Report>,
}

/// A device of the 2.2 table form.
#[derive(Debug, Serialize)]
pub struct Device22Report {
    /// Device-mapper name.
    pub name: String,
    /// Its own device number.
    pub dev: Option<DevNo>,
    /// Backing device number and path.
    pub backing: DevNo,
    /// Backing device path, when known.
    pub backing_path: Option<String>,
    /// Cache device number.
    pub cache: DevNo,
    /// Cache device path, when known.
    pub cache_path: Option<String>,
    /// Length in sectors.
    pub sectors: u64,
    /// The table's optional arguments.
    pub options: Vec<(String, u32)>,
    /// The status line, field by field.
    pub status: crate::status::Device22Status,
    /// Suspended.
    pub suspended: bool,
}

/// The manager.
#[derive(Debug, Serialize)]
pub struct ManagerReport {
    /// Its device-mapper name.
    pub name: String,
    /// The cache id its messages act on.
    pub cache_id_ptr: u8,
}

/// The daemon.
#[derive(Debug, Serialize)]
pub struct DaemonReport {
    /// Whether it runs.
    pub running: bool,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its pid file.
    pub pid_file: String,
}

/// A cache.
#[derive(Debug, Serialize)]
pub struct CacheReport {
    /// The sysfs nodes (tunables, progress).
    #[serde(flatten)]
    pub nodes: CacheNodes,
    /// The manager's status of it (segments, error, counters).
    pub status: Option<CacheStatus>,
    /// Ids of the devices bound to it.
    pub devices: Vec<u8>,
    /// Path of the cache device, when known.
    pub device_path: Option<String>,
}

/// A device.
#[derive(Debug, Serialize)]
pub struct DeviceReport {
    /// Device id.
    pub id: u8,
    /// Device-mapper name.
    pub name: String,
    /// Its own device number.
    pub dev: Option<DevNo>,
    /// Backing device number.
    pub backing: DevNo,
    /// Backing device path, when known.
    pub backing_path: Option<String>,
    /// Length in sectors.
    pub sectors: u64,
    /// Cache id in its table.
    pub table_cache_id: u8,
    /// Cache its I/O goes through.
    pub cache_id: u8,
    /// Dirty lines.
    pub nr_dirty_caches: u64,
    /// migrate_threshold (%), if it has a sysfs directory.
    pub migrate_threshold: Option<u8>,
    /// Open count.
    pub open_count: Option<u32>,
    /// Suspended.
    pub suspended: bool,
}

/// Gathers the report. `daemon_pid_file` is where the daemon's pid file is.
pub fn gather(ctx: &Ctx, daemon_pid_file: &Path) -> Result<Report> {
    let pid = crate::daemon::running(daemon_pid_file);
    let daemon = DaemonReport { running: pid.is_some(), pid, pid_file: daemon_pid_file.display().to_string() };
    let module_loaded = ctx.sys.module_loaded();
    if !module_loaded {
        return Ok(Report { module_loaded, manager: None, daemon, caches: vec![], devices: vec![], devices_22: vec![] });
    }
    let devs = topology::devices(&ctx.dm, &ctx.sys)?;
    let mut caches: Vec<CacheReport> = topology::caches(&ctx.sys)?
        .into_iter()
        .map(|nodes| CacheReport {
            devices: devs.iter().filter(|d| d.bound_cache() == nodes.id).map(|d| d.id()).collect(),
            device_path: nodes.device.and_then(|d| ctx.sys.dev_path(d)),
            nodes,
            status: None,
        })
        .collect();
    let mut manager = None;
    if let Some(name) = ctx.dm.mgr_name()? {
        let s = MgrSession::open(ctx)?;
        let orig = s.status()?.cache_id_ptr;
        for c in caches.iter_mut() {
            s.switch_to(c.nodes.id)?;
            c.status = s.status()?.cache;
        }
        if !caches.is_empty() {
            s.switch_to(orig)?;
        }
        manager = Some(ManagerReport { name, cache_id_ptr: orig });
    }
    let devices = devs
        .iter()
        .map(|d| DeviceReport {
            id: d.id(),
            name: d.name.clone(),
            dev: d.info.as_ref().map(|i| DevNo { major: i.major, minor: i.minor }),
            backing: d.table.backing,
            backing_path: ctx.sys.dev_path(d.table.backing),
            sectors: d.table.len,
            table_cache_id: d.table.cache_id,
            cache_id: d.bound_cache(),
            nr_dirty_caches: d.status.nr_dirty_caches,
            migrate_threshold: d.sysfs.as_ref().map(|s| s.migrate_threshold),
            open_count: d.info.as_ref().map(|i| i.open),
            suspended: d.info.as_ref().is_some_and(|i| i.suspended),
        })
        .collect();
    let devices_22 = topology::devices22(&ctx.dm)?
        .into_iter()
        .map(|d| Device22Report {
            dev: d.info.as_ref().map(|i| DevNo { major: i.major, minor: i.minor }),
            backing: d.table.backing,
            backing_path: ctx.sys.dev_path(d.table.backing),
            cache: d.table.cache,
            cache_path: ctx.sys.dev_path(d.table.cache),
            sectors: d.table.len,
            options: d.table.options,
            status: d.status,
            suspended: d.info.as_ref().is_some_and(|i| i.suspended),
            name: d.name,
        })
        .collect();
    Ok(Report { module_loaded, manager, daemon, caches, devices, devices_22 })
}

fn interval(s: u64) -> String {
    if s == 0 {
        "off".into()
    } else {
        format!("{} s", s)
    }
}

/// `write miss, full line` etc.
pub fn counter_name(c: &Counter) -> String {
    format!(
        "{} {}{}, {}",
        if c.write { "write" } else { "read" },
        if c.hit { "hit" } else { "miss" },
        if c.on_buffer { " on a RAM buffer" } else { "" },
        if c.fullsize { "full line" } else { "partial line" }
    )
}

/// The report for people. `counters` adds the 16 hit counters.
pub fn human(r: &Report, counters: bool) -> String {
    let mut o = String::new();
    if !r.module_loaded {
        let _ = writeln!(o, "the dm_writeboost module is not loaded (modprobe dm-writeboost)");
    } else {
        let _ = writeln!(o, "module:  dm_writeboost loaded");
        match &r.manager {
            Some(m) => {
                let _ = writeln!(o, "manager: {} (selected cache id {})", m.name, m.cache_id_ptr);
            }
            None => {
                let _ = writeln!(o, "manager: none (writeboost-create --mgr)");
            }
        }
    }
    match r.daemon.pid {
        Some(p) => {
            let _ = writeln!(o, "daemon:  running (pid {})", p);
        }
        None => {
            let _ = writeln!(o, "daemon:  not running");
        }
    }
    for c in &r.caches {
        let n = &c.nodes;
        let _ = writeln!(o);
        let dev = match (&c.device_path, n.device) {
            (Some(p), Some(d)) => format!("{} ({})", p, d),
            _ => "?".into(),
        };
        let _ = writeln!(o, "cache {} on {}", n.id, dev);
        if let Some(s) = &c.status {
            let _ = writeln!(o, "  segments:           {} (current {}, last flushed {}, last migrated {})", s.nr_segments, s.current_segment_id, n.last_flushed_segment_id, n.last_migrated_segment_id);
        } else {
            let _ = writeln!(o, "  segments:           last flushed {}, last migrated {}", n.last_flushed_segment_id, n.last_migrated_segment_id);
        }
        let _ = writeln!(o, "  dirty lines:        {} ({})", n.nr_dirty_caches, size(n.nr_dirty_caches * 8));
        let _ = writeln!(
            o,
            "  migration:          {}{}",
            if n.allow_migrate || n.force_migrate { "allowed" } else { "not allowed" },
            if n.force_migrate { " (forced)" } else { "" }
        );
        let _ = writeln!(
            o,
            "  daemon intervals:   update {}, idle flush {}, superblock commit {}",
            interval(n.update_interval),
            interval(n.flush_current_buffer_interval),
            interval(n.commit_super_block_interval)
        );
        let _ = writeln!(o, "  barrier deadline:   {} ms; migration batch: {} segment(s)", n.barrier_deadline_ms, n.nr_max_batched_migration);
        if let Some(s) = &c.status {
            let _ = writeln!(o, "  partial segments:   {}", s.nr_partial_flushed);
            if s.index_bytes > 0 {
                let _ = writeln!(o, "  static RAM:         {} (index {})", size(s.static_ram_bytes / 512), size(s.index_bytes / 512));
            } else {
                let _ = writeln!(o, "  static RAM:         {}", size(s.static_ram_bytes / 512));
            }
            let err = if s.error == 0 {
                "none".to_string()
            } else {
                format!("{} ({})", s.error, nix::errno::Errno::from_raw((-s.error) as i32).desc())
            };
            let _ = writeln!(o, "  I/O error:          {}", err);
        }
        let devs: Vec<String> = c
            .devices
            .iter()
            .map(|id| r.devices.iter().find(|d| d.id == *id).map_or(id.to_string(), |d| format!("{} ({})", id, d.name)))
            .collect();
        let _ = writeln!(o, "  devices:            {}", if devs.is_empty() { "none".to_string() } else { devs.join(", ") });
        if counters {
            if let Some(s) = &c.status {
                let _ = writeln!(o, "  counters:");
                for k in &s.counters {
                    let _ = writeln!(o, "    {:<40} {}", counter_name(k), k.count);
                }
            }
        }
    }
    for d in &r.devices {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "device {} {} (/dev/mapper/{}{}){}",
            d.id,
            d.name,
            d.name,
            d.dev.map_or(String::new(), |x| format!(", {}", x)),
            if d.suspended { " SUSPENDED" } else { "" }
        );
        let _ = writeln!(o, "  backing:            {} ({}), {}", d.backing_path.as_deref().unwrap_or("?"), d.backing, size(d.sectors));
        let cache = match (d.cache_id, d.table_cache_id) {
            (0, _) => "none (pass-through)".to_string(),
            (c, t) if c == t => c.to_string(),
            (c, t) => format!("{} (bound by its dirty data; table says {}: run writeboost-attach {} {})", c, t, d.id, c),
        };
        let _ = writeln!(o, "  cache:              {}", cache);
        let _ = writeln!(o, "  dirty lines:        {} ({})", d.nr_dirty_caches, size(d.nr_dirty_caches * 8));
        let _ = writeln!(
            o,
            "  migrate_threshold:  {}",
            d.migrate_threshold.map_or("? (no sysfs directory)".to_string(), |t| format!("{}%", t))
        );
        if let Some(n) = d.open_count {
            let _ = writeln!(o, "  open count:         {}", n);
        }
    }
    for d in &r.devices_22 {
        let s = &d.status;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "device {} (/dev/mapper/{}{}), dm-writeboost 2.2 form{}",
            d.name,
            d.name,
            d.dev.map_or(String::new(), |x| format!(", {}", x)),
            if d.suspended { " SUSPENDED" } else { "" }
        );
        let _ = writeln!(o, "  backing:            {} ({}), {}", d.backing_path.as_deref().unwrap_or("?"), d.backing, size(d.sectors));
        let _ = writeln!(o, "  private cache:      {} ({}), {} segments, {} lines", d.cache_path.as_deref().unwrap_or("?"), d.cache, s.nr_segments, s.nr_cache_blocks);
        let _ = writeln!(o, "  segments:           current {}, last flushed {}, last written back {}", s.current_id, s.last_flushed_id, s.last_writeback_id);
        let _ = writeln!(o, "  dirty lines:        {} ({})", s.nr_dirty_cache_blocks, size(s.nr_dirty_cache_blocks * 8));
        let _ = writeln!(o, "  partial segments:   {}", s.nr_partial_flushed);
        let t: Vec<String> = s.tunables.iter().map(|(k, v)| format!("{} {}", k, v)).collect();
        let _ = writeln!(o, "  tunables:           {}", t.join(", "));
        if counters {
            let _ = writeln!(o, "  counters:");
            for k in &s.counters {
                let _ = writeln!(o, "    {:<40} {}", counter_name(k), k.count);
            }
        }
    }
    if r.module_loaded && r.caches.is_empty() && r.devices.is_empty() && r.devices_22.is_empty() {
        let _ = writeln!(o, "\nno cache is resumed and no writeboost device exists");
    }
    o
}
