//! writeboost-attach: attach a device to a cache.

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Attach a writeboost device to a resumed cache: its table is reloaded
/// with the cache id while the device is suspended. From then on its
/// writes are cached (write-back).
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// Device id of the writeboost device.
    #[arg(value_parser = validate::device_id)]
    device_id: u8,
    /// Id of a resumed cache.
    #[arg(value_parser = validate::cache_id)]
    cache_id: u8,
    /// Set the device's migrate_threshold (%), used by the daemon.
    #[arg(long, value_name = "PERCENT", value_parser = validate::percent)]
    migrate_threshold: Option<u8>,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-attach 1 1
  writeboost-attach 2 1 --migrate-threshold 50     # two devices share cache 1

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted.";

fn main() {
    let a = Args::parse();
    cli::run(|| ops::attach(&Ctx::new(&a.common), a.device_id, a.cache_id, a.migrate_threshold))
}
