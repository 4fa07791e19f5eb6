//! Errors of the admin tools: values with a message a person can act on.
//!
//! Three kinds, with their own exit status (see [`Error::exit_code`]):
//! a bad invocation that was refused before anything was touched (2), an
//! operation that failed or was refused by the kernel (1), and an operation
//! interrupted by a signal, which says in what state it left things (130).

use std::fmt;
use std::path::{Path, PathBuf};

/// Result of the admin tools.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of an admin tool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The invocation is wrong (unknown id, bad path, wrong state for this
    /// command). Detected before the kernel was touched: nothing changed.
    #[error("{0}")]
    Invalid(String),

    /// A device-mapper operation (an ioctl) failed or was refused.
    #[error("{0}")]
    Dm(Box<DmError>),

    /// An external command (a `dmsetup` named by `$WRITEBOOST_DMSETUP`) failed.
    #[error("{}", CommandFailure(.0))]
    Command(Box<CommandError>),

    /// Reading or writing a file (sysfs, /proc, a lock file) failed.
    #[error("{op} {}: {source}{}", path.display(), KernelLines(kernel))]
    Io {
        /// What was being done ("cannot read", "cannot write 1 to").
        op: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
        /// Lines the kernel logged about it (`dm_writeboost: ...`).
        kernel: Vec<String>,
    },

    /// An operation failed for a reason the tool explains itself.
    #[error("{0}")]
    Failed(String),

    /// Interrupted by a signal (Ctrl-C); the message says what state was left.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// The device-mapper operations of the tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmOp {
    /// Opening `/dev/mapper/control`.
    Open,
    /// Listing the devices.
    List,
    /// Creating a device (create, load its table, resume).
    Create,
    /// Loading an inactive table.
    Load,
    /// Suspending.
    Suspend,
    /// Resuming (swapping in the inactive table).
    Resume,
    /// Dropping the inactive table.
    Clear,
    /// Removing a device.
    Remove,
    /// A target message.
    Message,
    /// A device's status.
    Status,
    /// A device's table.
    Table,
    /// A device's info.
    Info,
    /// Making or removing its `/dev/mapper` node (no udev).
    Node,
}

impl DmOp {
    /// What the operation is, for messages.
    pub fn what(self) -> &'static str {
        match self {
            DmOp::Open => "opening /dev/mapper/control",
            DmOp::List => "listing the devices",
            DmOp::Create => "create",
            DmOp::Load => "table load",
            DmOp::Suspend => "suspend",
            DmOp::Resume => "resume",
            DmOp::Clear => "table clear",
            DmOp::Remove => "remove",
            DmOp::Message => "message",
            DmOp::Status => "status",
            DmOp::Table => "table",
            DmOp::Info => "info",
            DmOp::Node => "device node",
        }
    }
}

/// A failed device-mapper operation: what was asked (and the `dmsetup`
/// command that asks the same), the error number the kernel returned, and
/// the lines it logged about it (a target's refusal, `ti->error`).
#[derive(Debug)]
pub struct DmError {
    /// The operation.
    pub op: DmOp,
    /// The device, if the operation is on one.
    pub name: Option<String>,
    /// The `dmsetup` command line that does the same, shell-quoted.
    pub by_hand: String,
    /// The kernel's error number, if the ioctl returned one.
    pub errno: Option<nix::errno::Errno>,
    /// Otherwise what went wrong (from the library or the tool).
    pub detail: String,
    /// Lines the kernel logged while it ran (`dm_writeboost: ...`,
    /// `device-mapper: ...`).
    pub kernel: Vec<String>,
}

impl fmt::Display for DmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device-mapper {}", self.op.what())?;
        if let Some(n) = &self.name {
            write!(f, " {} {}", if self.op == DmOp::Message { "to" } else { "of" }, n)?;
        }
        write!(f, " failed: ")?;
        match self.errno {
            Some(e) => write!(f, "{} ({:?})", e.desc(), e)?,
            None => write!(f, "{}", self.detail)?,
        }
        if !self.by_hand.is_empty() {
            write!(f, " (as `{}`)", self.by_hand)?;
        }
        write!(f, "{}", KernelLines(&self.kernel))
    }
}

impl std::error::Error for DmError {}

/// A failed external command, with everything needed to understand why.
#[derive(Debug)]
pub struct CommandError {
    /// The command line, shell-quoted.
    pub cmdline: String,
    /// Its exit status (`None`: killed by a signal or not started).
    pub status: Option<i32>,
    /// Why it could not be started, if it was not.
    pub spawn_error: Option<String>,
    /// Its standard error output, trimmed.
    pub stderr: String,
    /// Lines the kernel logged while it ran (`dm_writeboost: ...`,
    /// `device-mapper: ...`).
    pub kernel: Vec<String>,
}

struct CommandFailure<'a>(&'a CommandError);

impl fmt::Display for CommandFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        if let Some(why) = &e.spawn_error {
            return write!(f, "cannot run `{}`: {}", e.cmdline, why);
        }
        match e.status {
            Some(code) => write!(f, "`{}` failed (exit status {})", e.cmdline, code)?,
            None => write!(f, "`{}` was killed by a signal", e.cmdline)?,
        }
        for line in e.stderr.lines().filter(|l| !l.trim().is_empty()) {
            write!(f, "\n  {}", line.trim_end())?;
        }
        write!(f, "{}", KernelLines(&e.kernel))
    }
}

struct KernelLines<'a>(&'a [String]);

impl fmt::Display for KernelLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0 {
            write!(f, "\n  kernel: {}", line)?;
        }
        Ok(())
    }
}

impl Error {
    /// A bad invocation (nothing was touched).
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// A failure explained by the tool.
    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed(msg.into())
    }

    /// An I/O error on `path`.
    pub fn io(op: impl Into<String>, path: &Path, source: std::io::Error) -> Self {
        Error::Io { op: op.into(), path: path.to_path_buf(), source, kernel: Vec::new() }
    }

    /// The exit status for this error: 2 for a bad invocation, 130 for an
    /// interruption, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) => 2,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }

    /// The kernel log lines attached to this error.
    pub fn kernel_lines(&self) -> &[String] {
        match self {
            Error::Command(c) => &c.kernel,
            Error::Dm(d) => &d.kernel,
            Error::Io { kernel, .. } => kernel,
            _ => &[],
        }
    }

    /// Attaches kernel log lines (if the error kind carries them).
    pub fn with_kernel(mut self, lines: Vec<String>) -> Self {
        match &mut self {
            Error::Command(c) if c.kernel.is_empty() => c.kernel = lines,
            Error::Dm(d) if d.kernel.is_empty() => d.kernel = lines,
            Error::Io { kernel, .. } if kernel.is_empty() => *kernel = lines,
            _ => {}
        }
        self
    }

    /// Whether the error is an errno `EBUSY` from the kernel (as reported by
    /// a device-mapper ioctl, dmsetup or a sysfs write).
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Dm(d) => d.errno == Some(nix::errno::Errno::EBUSY),
            Error::Command(c) => c.stderr.contains("Device or resource busy"),
            Error::Io { source, .. } => source.raw_os_error() == Some(nix::libc::EBUSY),
            _ => false,
        }
    }

    /// Prefixes the message with context (for `Failed` and `Invalid`), or
    /// wraps it in a `Failed` with the context in front.
    pub fn context(self, what: impl fmt::Display) -> Self {
        match self {
            Error::Invalid(m) => Error::Invalid(format!("{}: {}", what, m)),
            Error::Interrupted(m) => Error::Interrupted(m),
            other => Error::Failed(format!("{}: {}", what, other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_error_shows_everything() {
        let e = Error::Command(Box::new(CommandError {
            cmdline: "dmsetup message writeboost-mgr 0 free_cache".into(),
            status: Some(1),
            spawn_error: None,
            stderr: "device-mapper: message ioctl on writeboost-mgr  failed: Device or resource busy\nCommand failed.\n".into(),
            kernel: vec!["dm_writeboost: writeboost-mgr: free_cache: cache 1 still serves device ids 1".into()],
        }));
        let s = e.to_string();
        assert!(s.starts_with("`dmsetup message writeboost-mgr 0 free_cache` failed (exit status 1)"), "{s}");
        assert!(s.contains("\n  device-mapper: message ioctl"), "{s}");
        assert!(s.contains("\n  kernel: dm_writeboost: writeboost-mgr: free_cache"), "{s}");
        assert!(e.is_busy());
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn dm_error_shows_everything() {
        let e = Error::Dm(Box::new(DmError {
            op: DmOp::Message,
            name: Some("writeboost-mgr".into()),
            by_hand: "dmsetup message writeboost-mgr 0 free_cache".into(),
            errno: Some(nix::errno::Errno::EBUSY),
            detail: String::new(),
            kernel: vec!["dm_writeboost: writeboost-mgr: free_cache: cache 1 still serves device ids 1".into()],
        }));
        assert_eq!(
            e.to_string(),
            "device-mapper message to writeboost-mgr failed: Device or resource busy (EBUSY) \
             (as `dmsetup message writeboost-mgr 0 free_cache`)\n  kernel: dm_writeboost: writeboost-mgr: free_cache: cache 1 still serves device ids 1"
        );
        assert!(e.is_busy());
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.kernel_lines().len(), 1);
        let e = Error::Dm(Box::new(DmError {
            op: DmOp::Open,
            name: None,
            by_hand: String::new(),
            errno: None,
            detail: "/dev/mapper/control: No such file or directory".into(),
            kernel: vec![],
        }))
        .with_kernel(vec!["device-mapper: ioctl: x".into()]);
        assert_eq!(e.to_string(), "device-mapper opening /dev/mapper/control failed: /dev/mapper/control: No such file or directory\n  kernel: device-mapper: ioctl: x");
        assert!(!e.is_busy());
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::invalid("x").exit_code(), 2);
        assert_eq!(Error::Interrupted("x".into()).exit_code(), 130);
        assert_eq!(Error::failed("x").exit_code(), 1);
    }

    #[test]
    fn io_error_with_kernel_line() {
        let e = Error::io(
            "cannot write 101 to",
            Path::new("/sys/module/dm_writeboost/devices/1/migrate_threshold"),
            std::io::Error::from_raw_os_error(nix::libc::EINVAL),
        )
        .with_kernel(vec!["dm_writeboost: devices/1/migrate_threshold: '101' is not a percentage (0..100)".into()]);
        let s = e.to_string();
        assert!(s.starts_with("cannot write 101 to /sys/module/dm_writeboost/devices/1/migrate_threshold: "), "{s}");
        assert!(s.contains("kernel: dm_writeboost: devices/1/migrate_threshold"), "{s}");
    }

    #[test]
    fn context_keeps_the_kind() {
        assert_eq!(Error::invalid("no device 9").context("attach").exit_code(), 2);
        assert_eq!(Error::invalid("no device 9").context("attach").to_string(), "attach: no device 9");
        assert_eq!(Error::failed("x").context("y").to_string(), "y: x");
    }
}
