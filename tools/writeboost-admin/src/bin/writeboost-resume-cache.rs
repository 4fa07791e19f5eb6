//! writeboost-resume-cache: build a cache from its device.

use std::path::PathBuf;

use clap::Parser;
use writeboost_admin::cli::{self, Common, Ctx};
use writeboost_admin::{ops, validate};

/// Resume cache CACHE_ID on a formatted cache device: the manager's
/// `switch_to CACHE_ID` and `resume_cache PATH`, under the manager lock.
/// The log is replayed; devices whose dirty data the cache holds are bound
/// to it (create them first, with their old device ids). Optionally sets
/// the cache's tunables afterwards.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    /// Cache id, 1..127.
    #[arg(value_parser = validate::cache_id)]
    cache_id: u8,
    /// The formatted cache device.
    cache_device: PathBuf,
    /// Resume although the log ends at a corrupt segment that a later one
    /// proves was durable (acknowledged data is lost): the kernel's
    /// `resume_cache PATH accept_data_loss`, which drops that segment and
    /// what follows it. Run writeboost-check first.
    #[arg(long)]
    accept_data_loss: bool,
    /// Allow migration (write-back to the backing devices) from the start.
    #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u64).range(0..=1))]
    allow_migrate: Option<u64>,
    /// Seconds between the daemon's migration decisions (0: off).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(0..=3600))]
    update_interval: Option<u64>,
    /// Seconds after which the daemon flushes an idle RAM buffer (0: off).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(0..=3600))]
    flush_current_buffer_interval: Option<u64>,
    /// Seconds between the daemon's superblock commits (0: off).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(0..=3600))]
    commit_super_block_interval: Option<u64>,
    /// Deadline for acknowledging FLUSH/FUA requests, in ms.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=10000))]
    barrier_deadline_ms: Option<u64>,
    /// Segments migrated per round.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=32))]
    nr_max_batched_migration: Option<u64>,
    #[command(flatten)]
    common: Common,
}

const AFTER: &str = "\
Examples:
  writeboost-resume-cache 1 /dev/nvme0n1p2
  writeboost-resume-cache 1 /dev/sdb --flush-current-buffer-interval 5 --commit-super-block-interval 10

After a crash: writeboost-create --mgr, re-create every device with its old
id (writeboost-create NAME ID BACKING), then this command; attach the
devices it reports as bound.

A backing device recorded (in the tools' state file) as used without this
cache while it may hold older data of it (writeboost-create --force) is
named in a warning on standard error: resuming replays that older data over
the newer. The resume goes ahead.

Exit status: 0 done; 1 failed or refused by the kernel (its log line is shown);
2 bad invocation, nothing was changed; 130 interrupted.";

fn main() {
    let a = Args::parse();
    let mut t: Vec<(&str, u64)> = Vec::new();
    for (name, v) in [
        ("allow_migrate", a.allow_migrate),
        ("update_interval", a.update_interval),
        ("flush_current_buffer_interval", a.flush_current_buffer_interval),
        ("commit_super_block_interval", a.commit_super_block_interval),
        ("barrier_deadline_ms", a.barrier_deadline_ms),
        ("nr_max_batched_migration", a.nr_max_batched_migration),
    ] {
        if let Some(v) = v {
            t.push((name, v));
        }
    }
    cli::run(|| ops::resume_cache(&Ctx::new(&a.common), a.cache_id, &a.cache_device, a.accept_data_loss, &t))
}
