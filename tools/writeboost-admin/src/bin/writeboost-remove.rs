//! writeboost-remove: remove a writeboost device (detaching it first), or
//! the manager.

use std::time::Duration;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Remove a writeboost device. An attached device is detached first, which
/// writes back its dirty data (see writeboost-detach). A device that is
/// open (mounted, in use) is refused. With --mgr, remove the manager
/// instead (no cache may be resumed).
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER, override_usage = "writeboost-remove [OPTIONS] <DEVICE_ID>\n       writeboost-remove --mgr")]
struct Args {
    /// Device id of the writeboost device.
    #[arg(value_parser = validate::device_id, required_unless_present = "mgr", conflicts_with = "mgr")]
    device_id: Option<u8>,
    /// Remove the manager (writeboost-mgr) instead.
    #[arg(long)]
    mgr: bool,
    /// Give up detaching after this many seconds (nothing is removed).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-remove 1
  writeboost-remove --mgr          # last step of a shutdown

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted (the device stays
attached).";

fn main() {
    let a = Args::parse();
    let o = ops::DrainOpts { timeout: a.timeout.map(Duration::from_secs), ..Default::default() };
    cli::run(|| {
        let ctx = Ctx::new(&a.common);
        match a.device_id {
            Some(id) => ops::remove(&ctx, id, &o),
            None => ops::remove_mgr(&ctx),
        }
    })
}
