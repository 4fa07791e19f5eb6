//! writeboost-create: create a writeboost device (not attached to a cache),
//! or the manager.

use std::path::PathBuf;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Create a writeboost device over a backing device, not yet attached to a
/// cache (table `0 <size> writeboost <ID> <BACKING> 0`), with its sysfs
/// directory; or, with --mgr, the manager device that owns the caches.
/// With CACHE_ID, the device is for that cache: attached to it if it is
/// resumed, else left for writeboost-resume-cache to bind.
///
/// The tools remember (in /var/lib/writeboost/state.json, or
/// $WRITEBOOST_STATE_FILE) which cache each backing disk was last attached
/// to. A disk whose last cache may still hold dirty data of it (it was not
/// detached since) is refused without that cache while the cache is not
/// resumed: the cache's older data would later be replayed over the newer.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER, override_usage = "writeboost-create [OPTIONS] <NAME> <DEVICE_ID> <BACKING> [CACHE_ID]\n       writeboost-create --mgr")]
struct Args {
    /// Name of the new device (/dev/mapper/NAME).
    #[arg(required_unless_present = "mgr", conflicts_with = "mgr")]
    name: Option<String>,
    /// Device id, 1..127 (unique; a cache's dirty data belongs to an id).
    #[arg(value_parser = validate::device_id, required_unless_present = "mgr")]
    device_id: Option<u8>,
    /// Backing (slow) block device.
    #[arg(required_unless_present = "mgr")]
    backing: Option<PathBuf>,
    /// The cache this device is for, 0..127 (0, the default: none).
    #[arg(value_parser = clap::value_parser!(u8).range(0..=127), conflicts_with = "mgr")]
    cache_id: Option<u8>,
    /// Use the backing device without its last cache although that cache
    /// may hold dirty data of it and is not resumed (its data of it becomes
    /// stale; writeboost-resume-cache warns about it).
    #[arg(long, conflicts_with = "mgr")]
    force: bool,
    /// Use only the first SECTORS 512-byte sectors of the backing device.
    #[arg(long, value_name = "SECTORS")]
    sectors: Option<u64>,
    /// Create the manager (writeboost-mgr) instead; needed before any cache.
    #[arg(long)]
    mgr: bool,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-create --mgr                  # the manager, once per boot
  writeboost-create wb1 1 /dev/sda         # device 1 over /dev/sda
  writeboost-attach 1 1                    # then attach it to cache 1
  writeboost-create wb1 1 /dev/sda 1       # after a crash: device 1 for cache 1,
  writeboost-resume-cache 1 /dev/sdb       #   then resume cache 1 (binds it)

After a crash, re-create every device with its old device id (and its
cache id) before resuming the cache: devices whose dirty data the cache
holds are bound to it by writeboost-resume-cache.

Refused (exit status 2) when the backing device's last cache may hold dirty
data of it and is not resumed, unless CACHE_ID is that cache; the message
names the cache and how to resume it. --force uses the disk anyway.

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted.";

fn main() {
    let a = Args::parse();
    cli::run(|| {
        let ctx = Ctx::new(&a.common);
        if a.mgr {
            return ops::create_mgr(&ctx);
        }
        let (Some(name), Some(id), Some(backing)) = (a.name, a.device_id, a.backing) else {
            unreachable!("clap requires them without --mgr")
        };
        ops::create(&ctx, &ops::CreateOpts { name, id, backing, sectors: a.sectors, cache: a.cache_id.unwrap_or(0), force: a.force })
    })
}
