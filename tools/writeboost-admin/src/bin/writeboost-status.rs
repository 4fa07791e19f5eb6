//! writeboost-status: the manager, the caches, the devices and the daemon.

use std::path::PathBuf;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::error::Error;
use writeboost_admin::{daemon, report, validate};

/// Show the state of writeboost: whether the module is loaded, the manager,
/// the migration daemon, every resumed cache (segments, dirty lines,
/// migration, tunables, I/O error, hit counters) and every writeboost
/// device (backing device, cache, dirty lines, migrate_threshold), and every
/// device of the dm-writeboost 2.2 table form (backing and private cache,
/// its status line parsed into named fields, its tunables).
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// Machine-readable output (one JSON object).
    #[arg(long)]
    json: bool,
    /// Also show the 16 hit counters of each cache.
    #[arg(long)]
    counters: bool,
    /// Only this cache (and its devices).
    #[arg(long, value_name = "ID", value_parser = validate::cache_id)]
    cache: Option<u8>,
    /// Only this device.
    #[arg(long, value_name = "ID", value_parser = validate::device_id)]
    device: Option<u8>,
    /// The daemon's pid file.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-status
  writeboost-status --json | jq '.devices[] | {name, nr_dirty_caches}'
  writeboost-status --cache 1 --counters
  writeboost-status --json | jq '.devices_22[] | {name, dirty: .status.nr_dirty_cache_blocks}'

Exit status: 0 done; 1 failed; 2 bad invocation (e.g. --cache of a cache that
is not resumed).";

fn main() {
    let a = Args::parse();
    cli::run(|| {
        let ctx = Ctx::new(&a.common);
        let pid_file = a.pid_file.clone().unwrap_or_else(daemon::default_pid_file);
        let mut r = report::gather(&ctx, &pid_file)?;
        if let Some(c) = a.cache {
            if !r.caches.iter().any(|x| x.nodes.id == c) {
                return Err(Error::invalid(format!("cache {} is not resumed", c)));
            }
            r.caches.retain(|x| x.nodes.id == c);
            r.devices.retain(|d| d.cache_id == c || d.table_cache_id == c);
            r.devices_22.clear();
        }
        if let Some(d) = a.device {
            if !r.devices.iter().any(|x| x.id == d) {
                return Err(Error::invalid(format!("there is no writeboost device with device id {}", d)));
            }
            r.devices.retain(|x| x.id == d);
            r.devices_22.clear();
            if a.cache.is_none() {
                r.caches.clear();
            }
        }
        if a.json {
            let s = serde_json::to_string_pretty(&r).map_err(|e| Error::failed(e.to_string()))?;
            println!("{}", s);
        } else {
            print!("{}", report::human(&r, a.counters));
        }
        Ok(())
    })
}
