//! writeboost-format-cache: format a cache device.

use std::path::PathBuf;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::ops;

/// Format a block device as a writeboost cache: superblock, empty record
/// and an empty log (the manager's `format_cache_device` message). Refuses
/// a device that is a resumed cache or a backing device, and asks for
/// --force before erasing an existing writeboost cache.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// The cache (fast) block device.
    cache_device: PathBuf,
    /// Format even if the device already holds a writeboost cache (its
    /// data, dirty or not, is lost).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-format-cache /dev/nvme0n1p2
  writeboost-format-cache --force /dev/sdb     # erase an old writeboost cache

The manager must exist (writeboost-create --mgr). Then resume the cache with
writeboost-resume-cache.

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted.";

fn main() {
    let a = Args::parse();
    cli::run(|| ops::format_cache(&Ctx::new(&a.common), &a.cache_device, a.force))
}
