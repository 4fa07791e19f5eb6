//! writeboost-daemon: modulates migration, flushes idle caches, commits
//! superblocks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use writeboost_admin::cli;
use writeboost_admin::daemon::{self, PidFile, RunOpts};
use writeboost_admin::error::Error;
use writeboost_admin::signals::Interrupt;
use writeboost_admin::sysfs::Sys;

/// The writeboost migration daemon. Every second it re-reads which caches
/// and devices exist, and for each cache: every `update_interval` s it
/// allows migration only while no attached device's backing disk is busier
/// than that device's migrate_threshold (busy = io_ticks / elapsed time,
/// from /proc/diskstats; force_migrate forces it on; a cache without
/// devices may always migrate); every `flush_current_buffer_interval` s it
/// flushes the RAM buffer of an idle cache; every
/// `commit_super_block_interval` s it commits the superblock record.
/// An interval of 0 disables that action.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// The pid file (locked by the running daemon).
    #[arg(long, global = true, value_name = "PATH")]
    pid_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run in the foreground (systemd, or a terminal); stops on SIGTERM/SIGINT.
    Run {
        /// One iteration, then exit.
        #[arg(long)]
        once: bool,
        /// Log every idle flush and superblock commit too.
        #[arg(short, long)]
        verbose: bool,
        /// Milliseconds between iterations.
        #[arg(long, default_value_t = 1000, hide = true)]
        tick_ms: u64,
    },
    /// Start in the background (a new session, output to the log file).
    Start {
        /// Where the daemon's output goes.
        #[arg(long, value_name = "PATH", default_value = "/var/log/writeboost-daemon.log")]
        log_file: PathBuf,
        /// Log every idle flush and superblock commit too.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Stop the running daemon (SIGTERM) and wait for it.
    Stop {
        /// Seconds to wait.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Say whether it runs (exit status 0) or not (3).
    Status,
}

const AFTER: &str = "\
Examples:
  writeboost-daemon start          # background, log in /var/log/writeboost-daemon.log
  writeboost-daemon status
  writeboost-daemon stop
  writeboost-daemon run            # foreground, as in writeboost-daemon.service
  systemctl enable --now writeboost-daemon

Tune it per cache through sysfs, e.g.
  echo 5 > /sys/module/dm_writeboost/caches/1/update_interval
  echo 50 > /sys/module/dm_writeboost/devices/1/migrate_threshold

Exit status: 0 done; 1 failed; 2 bad invocation; status: 3 not running.";

fn main() {
    let a = Args::parse();
    let pid_file = a.pid_file.clone().unwrap_or_else(daemon::default_pid_file);
    match a.cmd {
        Cmd::Run { once, verbose, tick_ms } => cli::run(|| {
            if tick_ms == 0 {
                return Err(Error::invalid("--tick-ms must be at least 1"));
            }
            let intr = Interrupt::install();
            let _pid = PidFile::acquire(&pid_file)?;
            daemon::run(&Sys::from_env(), &intr, &RunOpts { tick: Duration::from_millis(tick_ms), once, verbose })
        }),
        Cmd::Start { log_file, verbose } => cli::run(|| {
            let exe = std::env::current_exe().map_err(|e| Error::failed(format!("cannot find my own executable: {}", e)))?;
            let args: Vec<String> = if verbose { vec!["--verbose".into()] } else { vec![] };
            let pid = daemon::start(&exe, &args, &pid_file, &log_file)?;
            println!("writeboost-daemon started (pid {}); log: {}", pid, log_file.display());
            Ok(())
        }),
        Cmd::Stop { timeout } => cli::run(|| {
            match daemon::stop(&pid_file, Duration::from_secs(timeout))? {
                Some(pid) => println!("writeboost-daemon stopped (pid {})", pid),
                None => println!("writeboost-daemon is not running"),
            }
            Ok(())
        }),
        Cmd::Status => match daemon::running(&pid_file) {
            Some(pid) => {
                println!("writeboost-daemon is running (pid {})", pid);
                std::process::exit(0)
            }
            None => {
                println!("writeboost-daemon is not running");
                std::process::exit(3)
            }
        },
    }
}
