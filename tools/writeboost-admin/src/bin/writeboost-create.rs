//! writeboost-create: create a writeboost device (not attached to a cache),
//! or the manager.

use std::path::PathBuf;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Create a writeboost device over a backing device, not yet attached to a
/// cache (table `0 <size> writeboost <ID> <BACKING> 0`), with its sysfs
/// directory; or, with --mgr, the manager device that owns the caches.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER, override_usage = "writeboost-create [OPTIONS] <NAME> <DEVICE_ID> <BACKING>\n       writeboost-create --mgr")]
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

After a crash, re-create every device with its old device id before
resuming the cache: devices whose dirty data the cache holds are bound to it
by writeboost-resume-cache.

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
        ops::create(&ctx, &ops::CreateOpts { name, id, backing, sectors: a.sectors })
    })
}
