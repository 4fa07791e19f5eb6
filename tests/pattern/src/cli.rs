//! Command line (clap derive) and dispatch.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::check::{run_check, CheckOpts, Initial};
use crate::dev::{note, out};
use crate::parse::{parse_align, parse_initial, parse_region, parse_size_list, SizeList};
use crate::stream::{Region, StreamSpec};
use crate::write::{run_fill, run_write, WriteOpts};

const LONG_ABOUT: &str = "\
Deterministic, self-verifying write patterns for data-verification tests of a
block device (e.g. a device-mapper cache) or a regular file.

CONTENT MODEL
  Every 512-byte sector written carries a stamp:
    bytes 0..4     magic \"WBPT\"
    bytes 4..8     seed (u32 LE)
    bytes 8..16    absolute sector number on the device (u64 LE)
    bytes 16..24   generation = op number + --gen-base (u64 LE; 0 is reserved)
    bytes 24..28   CRC-32 (IEEE/zlib) of bytes 28..512 followed by bytes 0..24
    bytes 28..512  xorshift64 filler derived from (seed, sector, generation)
  so a sector read back tells which op wrote it, or that it holds zeros,
  garbage, a torn/corrupted stamp, another sector's data or another seed's.

OP STREAM
  (--region, --ops, --seed, --sizes, --align, --sequential, --gen-base) define
  the stream: op i (1..=N) picks from a seeded splitmix64 PRNG an I/O size
  from --sizes and an offset aligned to --align bytes (on the device) with the
  whole I/O inside the region; --sequential lays ops back to back from the
  first aligned offset instead, wrapping to the start when the next op does
  not fit. Op i stamps each of its sectors with generation i + --gen-base.
  `write` and `check` regenerate the same stream from the same arguments, so
  `check` knows which op last wrote every sector.

UNITS
  --region START:LEN  plain numbers are 512-byte SECTORS; with a suffix
                      K/M/G/T (KiB..TiB) they are BYTES and must be multiples
                      of 512 (e.g. 1M:64M = sectors 2048..133120).
  --sizes, --align    BYTES, suffixes allowed (e.g. 512,4K,64K,1M).

EXIT STATUS
  0 success (check: every sector ok), 1 check found bad sectors,
  2 usage or I/O error.";

const EXAMPLES: &str = "\
EXAMPLES
  # initialise 64 MiB at offset 1 MiB, write 5000 mixed ops, verify
  wbpattern fill  /dev/mapper/wb --region 1M:64M --seed 7 --gen 1000000
  wbpattern write /dev/mapper/wb --region 1M:64M --seed 7 --ops 5000 --fsync-every 100
  wbpattern check /dev/mapper/wb --region 1M:64M --seed 7 --ops 5000 --initial gen:1000000

  # crash test: the last 'flushed' line the writer printed was 'flushed 3200'
  wbpattern check /dev/mapper/wb --region 1M:64M --seed 7 --ops 5000 \\
      --durable 3200 --initial gen:1000000";

const WRITE_ABOUT: &str = "\
Write the op stream (see `wbpattern --help`) to DEV, in op order.

DEV (block device or regular file; it must exist, a regular file is extended
with zeros to the region's end) is opened with O_DIRECT; if that open fails
with EINVAL it is opened without O_DIRECT and a note is printed on stderr.
Buffers are 4 KiB aligned.

STDOUT
  flushed <op>   with --fsync-every K: printed after each fdatasync returns;
                 every op <= <op> is durable. A flush follows every K ops and
                 the last op.
  done <N>       at the end (all N ops completed; durable only if flushed).
  --fua makes each op durable on completion but prints nothing per op; add
  --fsync-every 1 for a 'flushed <op>' line after every op.

JOBS
  --jobs J (default 1) submits with J threads; thread j writes ops i with
  (i - 1) % J == j. Ops in one window (K ops with --fsync-every K, else the
  whole stream) complete before the window's flush. Overlapping ops from
  different threads have no defined order, so `check` must be given the same
  --jobs: with J > 1 it accepts, for each sector, the generation of ANY op
  <= N that wrote it (the initial content only if no op <= N, or <= D with
  --durable, wrote it). That rule is sound but cannot see a sector reverting
  to an older op that also wrote it; use --jobs 1 for strict ordering checks.
  With --sequential and a stream that does not wrap, ops never overlap and
  the rule is exact.";

const WRITE_EXAMPLES: &str = "\
EXAMPLES
  wbpattern write /dev/mapper/wb --region 0:256M --ops 20000 --seed 3 --sizes 4K,64K,1M --align 4K --fsync-every 500
  wbpattern write /dev/mapper/wb --region 0:256M --ops 4096 --sequential --sizes 1M --jobs 4";

const CHECK_ABOUT: &str = "\
Read the region of DEV back (O_DIRECT, 1 MiB reads; same EINVAL fallback as
`write`) and verify every sector against the op stream, which must be given
with the same arguments as to `write` (--region --ops --seed --sizes --align
--sequential --gen-base --jobs).

RULES (per sector s)
  Without --durable: s must carry the generation of the last op <= N that
  wrote it; if no op wrote it, it must match --initial.
  With --durable D (after a crash; D = last 'flushed' op): let a = the last
  op <= D that wrote s. s must carry a's generation (or match --initial if no
  op <= D wrote it) OR the generation of any op in (D, N] that wrote s. Data
  never goes back to older than what was flushed. N stays the --ops given
  to `write` even if the writer was cut off; with no 'flushed' line seen use
  --durable 0.
  With --jobs J > 1: see `wbpattern write --help`.
  A bad magic, CRC, filler, sector number or seed, zeros where a stamp is
  due, or a generation not allowed, is bad.

--initial (for sectors no relevant op wrote; default any)
  zero     all 512 bytes zero
  any      anything
  gen:G    a valid stamp of generation G with the same seed (e.g. from `fill`
           or from an earlier stream; give later streams a --gen-base above G,
           or fill with a G above all op generations)

STDOUT
  up to 20 lines 'sector X: expected gen A (or one of later gens B, C), found
  gen F' (or '... found garbage', '... found zeros', '... found data of
  sector Y gen G (misplaced/misdirected)'); then, if any sector is bad, a
  breakdown line; last the summary:
  checked <sectors> sectors: <n> ok, <m> bad
Exit 0 if all ok, 1 if any bad, 2 on usage or I/O error.";

const CHECK_EXAMPLES: &str = "\
EXAMPLES
  wbpattern check /dev/mapper/wb --region 0:256M --ops 20000 --seed 3 --sizes 4K,64K,1M --align 4K
  wbpattern check /dev/mapper/wb --region 0:256M --ops 20000 --seed 3 --sizes 4K,64K,1M --align 4K --durable 12500 --initial zero";

const FILL_ABOUT: &str = "\
Write every sector of the region with generation G (seed S), sequentially in
1 MiB writes, then fdatasync; prints 'filled <LEN> sectors with gen <G>'.
Afterwards `check --initial gen:G` (same --seed) verifies the sectors the op
stream did not touch. Pick G above every op generation of later streams (or
start those streams with --gen-base >= G).";

const FILL_EXAMPLES: &str = "\
EXAMPLES
  wbpattern fill /dev/vdb --region 0:1G --gen 1000000 --seed 7";

#[derive(Parser, Debug)]
#[command(
    name = "wbpattern",
    version,
    about = "Deterministic self-verifying write patterns for block-device data tests",
    long_about = LONG_ABOUT,
    after_long_help = EXAMPLES,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write the deterministic op stream to DEV
    #[command(long_about = WRITE_ABOUT, after_long_help = WRITE_EXAMPLES)]
    Write(WriteArgs),
    /// Verify every sector of the region against the op stream
    #[command(long_about = CHECK_ABOUT, after_long_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Initialise every sector of the region with one generation
    #[command(long_about = FILL_ABOUT, after_long_help = FILL_EXAMPLES)]
    Fill(FillArgs),
}

/// The arguments that define the op stream (shared by write and check).
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Region START:LEN: plain numbers are 512-byte sectors, K/M/G/T suffixed ones bytes
    #[arg(long, value_name = "START:LEN", value_parser = parse_region)]
    pub region: Region,
    /// Number of ops N (op numbers 1..=N)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub ops: u64,
    /// Seed of the stream and of the stamps
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u32,
    /// Comma-separated I/O sizes in bytes, multiples of 512 [default: 512,4K,64K,1M, those that fit the region]
    #[arg(long, value_name = "LIST", value_parser = parse_size_list)]
    pub sizes: Option<SizeList>,
    /// Alignment of op offsets on the device, bytes (multiple of 512)
    #[arg(long, value_name = "B", default_value = "512", value_parser = parse_align)]
    pub align: u64,
    /// Lay ops back to back from the region start, wrapping, instead of random offsets
    #[arg(long)]
    pub sequential: bool,
    /// Op i writes generation i + G
    #[arg(long, value_name = "G", default_value_t = 0)]
    pub gen_base: u64,
    /// Submitting threads for write; for check, selects the matching rule (see write --help)
    #[arg(long, value_name = "J", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
}

impl StreamArgs {
    fn spec(&self) -> StreamSpec {
        StreamSpec {
            region: self.region,
            ops: self.ops,
            seed: self.seed,
            sizes: self.sizes.as_ref().map(|l| l.0.clone()),
            align: self.align,
            sequential: self.sequential,
            gen_base: self.gen_base,
        }
    }
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    /// Block device or regular file
    #[arg(value_name = "DEV")]
    pub dev: PathBuf,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// fdatasync after every K ops and after the last op; print 'flushed <op>' after each
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub fsync_every: Option<u64>,
    /// Open with O_DSYNC (every write is durable when it completes)
    #[arg(long)]
    pub fua: bool,
    /// Print 'progress: <ops>/<N> ops, <MiB> MiB, <s> s' on stderr about once a second
    #[arg(long)]
    pub print_progress: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Block device or regular file
    #[arg(value_name = "DEV")]
    pub dev: PathBuf,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Last durable op (from the writer's last 'flushed <op>' line): crash-recovery rule
    #[arg(long, value_name = "D")]
    pub durable: Option<u64>,
    /// Content of sectors no op wrote: zero, any or gen:G
    #[arg(long, value_name = "zero|any|gen:G", default_value = "any", value_parser = parse_initial)]
    pub initial: Initial,
}

#[derive(Args, Debug)]
pub struct FillArgs {
    /// Block device or regular file
    #[arg(value_name = "DEV")]
    pub dev: PathBuf,
    /// Region START:LEN: plain numbers are 512-byte sectors, K/M/G/T suffixed ones bytes
    #[arg(long, value_name = "START:LEN", value_parser = parse_region)]
    pub region: Region,
    /// Generation to write (>= 1)
    #[arg(long, value_name = "G", value_parser = clap::value_parser!(u64).range(1..))]
    pub gen: u64,
    /// Seed of the stamps
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u32,
}

/// Run a parsed command; Ok(exit code) or Err(message) for exit 2.
pub fn dispatch(cli: Cli) -> Result<i32, String> {
    match cli.cmd {
        Command::Write(a) => {
            let stream = a.stream.spec().build()?;
            let opts = WriteOpts {
                fsync_every: a.fsync_every,
                fua: a.fua,
                jobs: a.stream.jobs,
                progress: a.print_progress,
            };
            run_write(&a.dev, &stream, &opts)?;
            Ok(0)
        }
        Command::Check(a) => {
            let stream = a.stream.spec().build()?;
            let opts = CheckOpts {
                durable: a.durable,
                initial: a.initial,
                any_order: a.stream.jobs > 1,
                max_details: 20,
            };
            let rep = run_check(&a.dev, &stream, &opts)?;
            for l in rep.lines() {
                out(&l)?;
            }
            Ok(if rep.bad == 0 { 0 } else { 1 })
        }
        Command::Fill(a) => {
            run_fill(&a.dev, a.region, a.seed, a.gen)?;
            Ok(0)
        }
    }
}

/// Parse the command line and run; returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(msg) => {
            note(&format!("wbpattern: error: {msg}"));
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
