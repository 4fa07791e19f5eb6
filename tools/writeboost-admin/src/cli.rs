//! What every command shares: the common options, the context, and how an
//! error becomes a message and an exit status.

use crate::dm::Dm;
use crate::error::Result;
use crate::signals::Interrupt;
use crate::state::Store;
use crate::sysfs::Sys;

/// Options every command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Common {
    /// Show every device-mapper operation, as the dmsetup command that does
    /// the same, before it runs (the tools use the DM ioctls, not dmsetup).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// No progress display.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The context of a command.
pub struct Ctx {
    /// Device-mapper.
    pub dm: Dm,
    /// sysfs.
    pub sys: Sys,
    /// Ctrl-C.
    pub intr: Interrupt,
    /// No progress display.
    pub quiet: bool,
    /// The state file (which disk had which cache).
    pub state: Store,
}

impl Ctx {
    /// The context for these options; installs the signal handlers.
    pub fn new(c: &Common) -> Self {
        Ctx { dm: Dm::new(c.verbose), sys: Sys::from_env(), intr: Interrupt::install(), quiet: c.quiet, state: Store::from_env() }
    }
}

/// Runs a command's body and exits: 0 on success, otherwise the error's
/// message on standard error and its exit status.
pub fn run(body: impl FnOnce() -> Result<()>) -> ! {
    match body() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{}: {}", crate::lock::program_name(), e);
            std::process::exit(e.exit_code())
        }
    }
}
