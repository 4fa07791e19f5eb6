//! writeboost-free-cache: stop a cache.

use std::time::Duration;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Free a resumed cache: the manager's `switch_to CACHE_ID` and
/// `free_cache`, under the manager lock. The kernel flushes the RAM
/// buffers, stops the cache's threads and writes its record; the cache can
/// be resumed again later. No device may be attached to it. If it still
/// holds dirty data of removed devices, choose --drain or --keep-dirty.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// Cache id.
    #[arg(value_parser = validate::cache_id)]
    cache_id: u8,
    /// Write back dirty data of removed devices first.
    #[arg(long, conflicts_with = "keep_dirty")]
    drain: bool,
    /// Free the cache although it holds dirty data of removed devices (the
    /// data stays on the cache device; resuming it needs those devices).
    #[arg(long)]
    keep_dirty: bool,
    /// With --drain: give up after this many seconds (nothing is freed).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-free-cache 1

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted.";

fn main() {
    let a = Args::parse();
    let policy = if a.drain {
        ops::DirtyPolicy::Drain
    } else if a.keep_dirty {
        ops::DirtyPolicy::Keep
    } else {
        ops::DirtyPolicy::Refuse
    };
    let o = ops::DrainOpts { timeout: a.timeout.map(Duration::from_secs), ..Default::default() };
    cli::run(|| ops::free_cache(&Ctx::new(&a.common), a.cache_id, policy, &o))
}
