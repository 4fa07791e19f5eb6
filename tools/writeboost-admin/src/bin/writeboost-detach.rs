//! writeboost-detach: write back a device's dirty data and detach it.

use std::time::Duration;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Detach a writeboost device from its cache. Its dirty data is written
/// back first: migration is forced on for the cache (force_migrate, its old
/// value is restored afterwards), the RAM buffer is flushed, and the tool
/// waits, showing progress, until the device has no dirty line. The last
/// lines are drained with the device suspended, then its table is reloaded
/// with cache 0. A device is never detached with dirty data left: on
/// Ctrl-C, --timeout or any error it stays attached.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// Device id of the writeboost device.
    #[arg(value_parser = validate::device_id)]
    device_id: u8,
    /// Give up after this many seconds (the device stays attached).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Say why after this many seconds without write-back progress.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    stall_report: u64,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-detach 1
  writeboost-detach 1 --timeout 600

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted (the device stays
attached).";

fn main() {
    let a = Args::parse();
    let o = ops::DrainOpts {
        timeout: a.timeout.map(Duration::from_secs),
        stall: Duration::from_secs(a.stall_report),
        ..Default::default()
    };
    cli::run(|| ops::detach(&Ctx::new(&a.common), a.device_id, &o))
}
