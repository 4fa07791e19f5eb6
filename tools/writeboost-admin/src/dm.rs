//! Device-mapper operations: the DM ioctls, through the `devicemapper`
//! crate.
//!
//! Every call returns a value or an [`Error::Dm`] saying which operation on
//! which device failed, with the kernel's error number, the lines the kernel
//! logged while it ran (a target's refusal, `ti->error`, is logged as
//! `device-mapper: table: ...`, writeboost's own as `dm_writeboost: ...`)
//! and the `dmsetup` command that does the same by hand. The tools need no
//! `dmsetup`; `-v` shows each operation as that command.
//!
//! `/dev/mapper` nodes: where udev runs (`/run/udev/control` exists, the
//! test the library itself makes) the library waits for udev to finish its
//! rules, which make the nodes (and whose `95-dm-notify.rules` ends the
//! wait: without it a resume or remove is refused rather than left waiting
//! forever). Without udev nobody makes them, so the tools
//! do what `dmsetup` does then: `mknod /dev/mapper/NAME` with the device's
//! number after a create, and unlink it after a remove.
//!
//! Ctrl-C and SIGTERM are held back while an ioctl runs (a suspend waits
//! interruptibly for I/O in flight and would fail with EINTR): the tool
//! sees them when the call returns and decides when it is safe to stop.
//!
//! For tests, `$WRITEBOOST_DMSETUP` names a `dmsetup`-compatible program
//! that is run instead of the ioctls (the host tests use a fake one that
//! records its calls).

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use devicemapper::{DevId, DmFlags, DmName, DmOptions, DM};
use nix::errno::Errno;

use crate::error::{CommandError, DmError, DmOp, Error, Result};
use crate::kmsg::KernelLog;

/// The name of the manager device the tools create and look for.
pub const MGR_NAME: &str = "writeboost-mgr";

/// Where device-mapper nodes live.
const MAPPER_DIR: &str = "/dev/mapper";

/// How device-mapper is driven.
pub struct Dm {
    backend: Backend,
    verbose: bool,
}

enum Backend {
    /// The DM ioctls, on `/dev/mapper/control` (opened at the first use).
    Ioctl(OnceLock<std::result::Result<DM, String>>),
    /// A `dmsetup`-compatible program (`$WRITEBOOST_DMSETUP`).
    Program(OsString),
}

/// The info of one device (as `dmsetup info` shows it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmInfo {
    /// The device name.
    pub name: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Open count.
    pub open: u32,
    /// Suspended.
    pub suspended: bool,
    /// An inactive table is loaded.
    pub inactive_table: bool,
}

/// Quotes `s` for display as one shell word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `dmsetup ARGS...`, shell-quoted: what a person types for the same.
fn dmsetup_line(args: &[&str]) -> String {
    std::iter::once("dmsetup").chain(args.iter().copied()).map(shell_quote).collect::<Vec<_>>().join(" ")
}

/// One table line: start, length, target type, parameters.
pub type TableLine = (u64, u64, String, String);

/// Parses a table (`START LEN TYPE PARAMS...`, one target a line) as
/// `dmsetup create --table` does.
pub fn parse_table(table: &str) -> std::result::Result<Vec<TableLine>, String> {
    let mut v = Vec::new();
    for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut rest = line;
        let mut word = || {
            let r = rest.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            rest = &r[end..];
            &r[..end]
        };
        let (start, len, ttype) = (word(), word(), word());
        let (Ok(start), Ok(len)) = (start.parse::<u64>(), len.parse::<u64>()) else {
            return Err(format!("table line '{}' does not start with START LEN", line));
        };
        if ttype.is_empty() {
            return Err(format!("table line '{}' has no target type", line));
        }
        v.push((start, len, ttype.to_string(), rest.trim().to_string()));
    }
    if v.is_empty() {
        return Err("empty table".to_string());
    }
    Ok(v)
}

/// A table or status line as `dmsetup table|status` prints it.
pub fn format_line((start, len, ttype, params): &TableLine) -> String {
    format!("{} {} {} {}", start, len, ttype, params)
}

/// Whether udev runs (and so makes and removes the `/dev/mapper` nodes):
/// its control socket exists, the test the `devicemapper` crate makes
/// before it synchronises with udev.
pub fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// Where udev reads its rules from.
pub const UDEV_RULE_DIRS: &[&str] = &["/etc/udev/rules.d", "/run/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d", "/usr/local/lib/udev/rules.d"];

/// The device-mapper rule that tells a waiting tool that udev is done with
/// a device (it runs `dmsetup udevcomplete COOKIE`).
pub const DM_NOTIFY_RULE: &str = "95-dm-notify.rules";

/// The device-mapper notify rule in one of `dirs`, if installed.
pub fn dm_notify_rule_in(dirs: &[&str]) -> Option<PathBuf> {
    dirs.iter().map(|d| Path::new(d).join(DM_NOTIFY_RULE)).find(|p| p.exists())
}

/// `/dev/mapper/NAME`.
pub fn node_path(name: &str) -> PathBuf {
    Path::new(MAPPER_DIR).join(name)
}

/// The `major:minor` of the block node at `path`, following a symlink
/// (udev makes `/dev/mapper/NAME` a link to `../dm-N`).
fn node_devno(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok().filter(|m| m.file_type().is_block_device())?;
    let r = m.rdev();
    Some((nix::sys::stat::major(r) as u32, nix::sys::stat::minor(r) as u32))
}

/// What to do with `/dev/mapper/NAME` after a create (without udev):
/// nothing if it is the device's node, otherwise (re)make it. An entry that
/// is not a block node nor a symlink (a directory, a file) is left alone
/// and reported.
#[derive(Debug, PartialEq, Eq)]
pub enum NodeFix {
    /// The node is right.
    Keep,
    /// Make it (nothing there).
    Make,
    /// Remove what is there (a stale node or link), then make it.
    Replace,
    /// Something else is there.
    Foreign,
}

/// Decides [`NodeFix`] for `path` and the device number `want`.
pub fn node_fix(path: &Path, want: (u32, u32)) -> NodeFix {
    let Ok(lm) = std::fs::symlink_metadata(path) else { return NodeFix::Make };
    if node_devno(path) == Some(want) {
        return NodeFix::Keep;
    }
    use std::os::unix::fs::FileTypeExt;
    let t = lm.file_type();
    if t.is_block_device() || t.is_symlink() {
        NodeFix::Replace
    } else {
        NodeFix::Foreign
    }
}

/// The signals the tools handle (see [`crate::signals`]), blocked in this
/// thread while a DM ioctl runs.
struct HeldSignals(Option<nix::sys::signal::SigSet>);

impl HeldSignals {
    fn hold() -> Self {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        let mut old = SigSet::empty();
        match pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)) {
            Ok(()) => HeldSignals(Some(old)),
            Err(_) => HeldSignals(None),
        }
    }
}

impl Drop for HeldSignals {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
    }
}

/// The error number of a failed library call, if it was an ioctl.
fn errno_of(e: &devicemapper::DmError) -> Option<Errno> {
    match e {
        devicemapper::DmError::Core(devicemapper::errors::Error::Ioctl(_, _, _, errno)) => Some(**errno),
        _ => None,
    }
}

/// Opens `/dev/mapper/control`, making the node first if it is missing
/// (as `dmsetup` does: its number is in sysfs once device-mapper is loaded).
fn open_control() -> std::result::Result<DM, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ctl = Path::new(MAPPER_DIR).join("control");
    let devno = std::fs::read_to_string("/sys/class/misc/device-mapper/dev").ok().and_then(|d| {
        let (a, b) = d.trim().split_once(':')?;
        Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
    });
    let have = std::fs::symlink_metadata(&ctl).ok();
    let right = |m: &std::fs::Metadata| {
        m.file_type().is_char_device()
            && devno.is_none_or(|(ma, mi)| (nix::sys::stat::major(m.rdev()) as u32, nix::sys::stat::minor(m.rdev()) as u32) == (ma, mi))
    };
    if !have.as_ref().is_some_and(right) {
        // Missing, or not the control device (a stale node of another
        // number, a file): made again from sysfs, as dmsetup does.
        let (ma, mi) = devno.ok_or_else(|| {
            format!(
                "device-mapper is not available ({} {}, and no /sys/class/misc/device-mapper: is the dm_mod module loaded?)",
                ctl.display(),
                if have.is_some() { "is not its control device" } else { "is missing" }
            )
        })?;
        if let Some(m) = &have {
            if m.is_dir() {
                return Err(format!("{} is a directory, not the device-mapper control device ({}:{})", ctl.display(), ma, mi));
            }
            std::fs::remove_file(&ctl).map_err(|e| format!("{} is not the device-mapper control device ({}:{}) and cannot be removed: {}", ctl.display(), ma, mi, e))?;
        }
        std::fs::create_dir_all(MAPPER_DIR).map_err(|e| format!("cannot create {}: {}", MAPPER_DIR, e))?;
        make_node(&ctl, (ma, mi), nix::sys::stat::SFlag::S_IFCHR).map_err(|e| format!("cannot create {}: {}", ctl.display(), e))?;
    }
    DM::new().map_err(|e| match e {
        devicemapper::DmError::Core(devicemapper::errors::Error::ContextInit(m)) => format!("cannot open {}: {}", ctl.display(), m),
        other => other.to_string(),
    })
}

/// `mknod PATH` of `kind` with number `devno`, mode 0600 (dmsetup's).
fn make_node(path: &Path, (ma, mi): (u32, u32), kind: nix::sys::stat::SFlag) -> std::io::Result<()> {
    use nix::sys::stat::{makedev, mknod, Mode};
    mknod(path, kind, Mode::from_bits_truncate(0o600), makedev(ma as u64, mi as u64)).map_err(std::io::Error::from)?;
    use std::os::unix::fs::PermissionsExt;
    // mknod applies the umask; the mode is dmsetup's whatever it is.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

impl Dm {
    /// Device-mapper through its ioctls (or the program named by
    /// `$WRITEBOOST_DMSETUP`); `verbose` shows each operation on standard
    /// error as the `dmsetup` command that does the same.
    pub fn new(verbose: bool) -> Self {
        let backend = match std::env::var_os("WRITEBOOST_DMSETUP") {
            Some(bin) if !bin.is_empty() => Backend::Program(bin),
            _ => Backend::Ioctl(OnceLock::new()),
        };
        Dm { backend, verbose }
    }

    /// Whether operations are echoed.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    fn echo(&self, line: &str) {
        if self.verbose {
            eprintln!("+ {}", line);
        }
    }

    /// Runs `f` on the control device, with the termination signals held
    /// back; a failure becomes a [`DmError`] with the kernel's lines.
    fn ioctl<T>(&self, op: DmOp, name: Option<&str>, by_hand: &str, f: impl FnOnce(&DM) -> devicemapper::DmResult<T>) -> Result<T> {
        let Backend::Ioctl(cell) = &self.backend else { unreachable!("ioctl() with the program backend") };
        let fail = |errno: Option<Errno>, detail: String, kernel: Vec<String>| {
            Error::Dm(Box::new(DmError { op, name: name.map(str::to_string), by_hand: by_hand.to_string(), errno, detail, kernel }))
        };
        let dm = cell.get_or_init(open_control).as_ref().map_err(|m| {
            Error::Dm(Box::new(DmError { op: DmOp::Open, name: None, by_hand: String::new(), errno: None, detail: m.clone(), kernel: Vec::new() }))
        })?;
        let mut klog = KernelLog::open();
        let _held = HeldSignals::hold();
        f(dm).map_err(|e| fail(errno_of(&e), e.to_string(), klog.new_lines()))
    }

    /// Where udev runs, a resume or remove waits (in the library, without a
    /// time limit, signals held) until udev's device-mapper rules say they
    /// are done. Without those rules that is forever: refused instead.
    fn check_udev_sync(op: DmOp, name: &str, by_hand: &str) -> Result<()> {
        if !udev_running() || dm_notify_rule_in(UDEV_RULE_DIRS).is_some() {
            return Ok(());
        }
        Err(Error::Dm(Box::new(DmError {
            op,
            name: Some(name.to_string()),
            by_hand: by_hand.to_string(),
            errno: None,
            detail: format!(
                "udev runs (/run/udev/control exists) but its device-mapper rules are not installed (no {} in {}): \
                 the operation would wait for udev forever; install them (the dmsetup package ships them) or stop udev",
                DM_NOTIFY_RULE,
                UDEV_RULE_DIRS.join(", ")
            ),
            kernel: Vec::new(),
        })))
    }

    /// A device name as the library takes it.
    fn dm_name<'a>(op: DmOp, name: &'a str, by_hand: &str) -> Result<&'a DmName> {
        DmName::new(name).map_err(|e| {
            Error::Dm(Box::new(DmError {
                op,
                name: Some(name.to_string()),
                by_hand: by_hand.to_string(),
                errno: None,
                detail: format!("invalid device-mapper name: {}", e),
                kernel: Vec::new(),
            }))
        })
    }

    /// Runs `dmsetup args...` (with `stdin` fed to it) and returns its
    /// standard output: the `$WRITEBOOST_DMSETUP` program.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let Backend::Program(bin) = &self.backend else { unreachable!("run() with the ioctl backend") };
        let cmdline = dmsetup_line(args);
        self.echo(&cmdline);
        let mut klog = KernelLog::open();
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let spawn_err = |e: std::io::Error| {
            Error::Command(Box::new(CommandError {
                cmdline: cmdline.clone(),
                status: None,
                spawn_error: Some(if e.kind() == std::io::ErrorKind::NotFound {
                    "not found (WRITEBOOST_DMSETUP names a program that does not exist; unset it to use the ioctls)".to_string()
                } else {
                    e.to_string()
                }),
                stderr: String::new(),
                kernel: Vec::new(),
            }))
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A failed write shows up as dmsetup's own error below.
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(Error::Command(Box::new(CommandError {
            cmdline,
            status: out.status.code(),
            spawn_error: None,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            kernel: klog.new_lines(),
        })))
    }

    /// `dmsetup create NAME --table TABLE`: creates the device, loads its
    /// table and resumes it (a device whose table is refused is removed
    /// again, as dmsetup does); then makes its `/dev/mapper` node if udev
    /// does not.
    pub fn create(&self, name: &str, table: &str) -> Result<()> {
        let by_hand = dmsetup_line(&["create", name, "--table", table]);
        if let Backend::Program(_) = self.backend {
            self.run(&["create", name, "--table", table], None)?;
            return self.ensure_node_program(name);
        }
        self.echo(&by_hand);
        let lines = parse_table(table).map_err(|e| Error::failed(format!("{}: {}", by_hand, e)))?;
        let n = Self::dm_name(DmOp::Create, name, &by_hand)?;
        Self::check_udev_sync(DmOp::Create, name, &by_hand)?;
        // Without udev the node is ours to make: something that is not a
        // node in its place (a directory, a file) is refused before the
        // device exists, not after.
        if !udev_running() && node_fix(&node_path(name), (0, 0)) == NodeFix::Foreign {
            return Err(Self::node_error(name, format!("{} exists and is not a device node: remove it first", node_path(name).display())));
        }
        let id = DevId::Name(n);
        let info = self.ioctl(DmOp::Create, Some(name), &by_hand, |dm| {
            dm.device_create(n, None, DmOptions::default())?;
            let loaded = dm
                .table_load(&id, &lines, DmOptions::default())
                .and_then(|_| dm.device_suspend(&id, DmOptions::default()));
            match loaded {
                Ok(info) => Ok(info),
                Err(e) => {
                    // Undo the create: no half-made device stays behind.
                    let _ = dm.device_remove(&id, DmOptions::default());
                    Err(e)
                }
            }
        })?;
        let d = info.device();
        if let Err(e) = self.make_node(name, (d.major, d.minor)) {
            // No device without its node stays behind.
            let undo = self.ioctl(DmOp::Remove, Some(name), &dmsetup_line(&["remove", name]), |dm| dm.device_remove(&id, DmOptions::default()));
            return Err(match undo {
                Ok(_) => e.context(format!("{} was created, but not its node, so it was removed again", name)),
                Err(u) => e.context(format!("{} was created, but not its node, and removing it failed too ({}): dmsetup remove {}", name, u, name)),
            });
        }
        Ok(())
    }

    /// A failure to make `/dev/mapper/NAME`.
    fn node_error(name: &str, detail: String) -> Error {
        Error::Dm(Box::new(DmError { op: DmOp::Node, name: Some(name.to_string()), by_hand: dmsetup_line(&["mknodes", name]), errno: None, detail, kernel: Vec::new() }))
    }

    /// Without udev: makes `/dev/mapper/NAME` the block node of `devno`
    /// (a node left behind by a removed device may carry another number).
    fn make_node(&self, name: &str, devno: (u32, u32)) -> Result<()> {
        if udev_running() {
            return Ok(());
        }
        let path = node_path(name);
        let fail = |detail: String| Self::node_error(name, detail);
        let fix = node_fix(&path, devno);
        if fix == NodeFix::Keep {
            return Ok(());
        }
        if fix == NodeFix::Foreign {
            return Err(fail(format!("{} exists and is not a device node", path.display())));
        }
        self.echo(&format!("mknod {} b {} {}", path.display(), devno.0, devno.1));
        if fix == NodeFix::Replace {
            std::fs::remove_file(&path).map_err(|e| fail(format!("cannot remove the stale {}: {}", path.display(), e)))?;
        }
        std::fs::create_dir_all(MAPPER_DIR).map_err(|e| fail(format!("cannot create {}: {}", MAPPER_DIR, e)))?;
        make_node(&path, devno, nix::sys::stat::SFlag::S_IFBLK).map_err(|e| fail(format!("cannot create {}: {}", path.display(), e)))
    }

    /// Without udev: removes `/dev/mapper/NAME` of a removed device.
    fn drop_node(&self, name: &str) {
        if udev_running() {
            return;
        }
        let path = node_path(name);
        use std::os::unix::fs::FileTypeExt;
        let Ok(m) = std::fs::symlink_metadata(&path) else { return };
        if m.file_type().is_block_device() || m.file_type().is_symlink() {
            self.echo(&format!("rm {}", path.display()));
            if let Err(e) = std::fs::remove_file(&path) {
                eprintln!("warning: cannot remove {} of the removed device {}: {}", path.display(), name, e);
            }
        }
    }

    /// The program backend's node check: `dmsetup mknodes NAME` if
    /// `/dev/mapper/NAME` is not the device's node.
    fn ensure_node_program(&self, name: &str) -> Result<()> {
        let want = self.info(name)?.map(|i| (i.major, i.minor));
        if want.is_none() || node_devno(&node_path(name)) != want {
            self.run(&["mknodes", name], None)?;
        }
        Ok(())
    }

    /// Suspend or resume through the ioctl.
    fn suspend_resume(&self, name: &str, suspend: bool) -> Result<()> {
        let what = if suspend { "suspend" } else { "resume" };
        let by_hand = dmsetup_line(&[what, name]);
        self.echo(&by_hand);
        let op = if suspend { DmOp::Suspend } else { DmOp::Resume };
        let n = Self::dm_name(op, name, &by_hand)?;
        if !suspend {
            Self::check_udev_sync(op, name, &by_hand)?;
        }
        let opts = if suspend { DmOptions::default().set_flags(DmFlags::DM_SUSPEND) } else { DmOptions::default() };
        self.ioctl(op, Some(name), &by_hand, |dm| dm.device_suspend(&DevId::Name(n), opts)).map(drop)
    }

    /// `dmsetup load NAME --table TABLE` (an inactive table).
    pub fn load(&self, name: &str, table: &str) -> Result<()> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["load", name, "--table", table], None).map(drop);
        }
        let by_hand = dmsetup_line(&["load", name, "--table", table]);
        self.echo(&by_hand);
        let lines = parse_table(table).map_err(|e| Error::failed(format!("{}: {}", by_hand, e)))?;
        let n = Self::dm_name(DmOp::Load, name, &by_hand)?;
        self.ioctl(DmOp::Load, Some(name), &by_hand, |dm| dm.table_load(&DevId::Name(n), &lines, DmOptions::default())).map(drop)
    }

    /// `dmsetup suspend NAME` (waits for I/O in flight; writeboost flushes
    /// its RAM buffer).
    pub fn suspend(&self, name: &str) -> Result<()> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["suspend", name], None).map(drop);
        }
        self.suspend_resume(name, true)
    }

    /// `dmsetup resume NAME` (swaps in the inactive table, if any).
    pub fn resume(&self, name: &str) -> Result<()> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["resume", name], None).map(drop);
        }
        self.suspend_resume(name, false)
    }

    /// `dmsetup clear NAME` (drops the inactive table).
    pub fn clear(&self, name: &str) -> Result<()> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["clear", name], None).map(drop);
        }
        let by_hand = dmsetup_line(&["clear", name]);
        self.echo(&by_hand);
        let n = Self::dm_name(DmOp::Clear, name, &by_hand)?;
        self.ioctl(DmOp::Clear, Some(name), &by_hand, |dm| dm.table_clear(&DevId::Name(n))).map(drop)
    }

    /// `dmsetup remove --retry NAME` (a device that is briefly open, say by
    /// blkid, is tried again for about 5 s), and its node is gone afterwards.
    pub fn remove(&self, name: &str) -> Result<()> {
        if let Backend::Program(_) = self.backend {
            self.run(&["remove", "--retry", name], None)?;
            if node_path(name).exists() {
                // mknodes removes nodes of devices that no longer exist.
                let _ = self.run(&["mknodes"], None);
            }
            return Ok(());
        }
        let by_hand = dmsetup_line(&["remove", "--retry", name]);
        self.echo(&by_hand);
        let n = Self::dm_name(DmOp::Remove, name, &by_hand)?;
        Self::check_udev_sync(DmOp::Remove, name, &by_hand)?;
        let id = DevId::Name(n);
        self.ioctl(DmOp::Remove, Some(name), &by_hand, |dm| {
            // The library tries 5 times, 200 ms apart, while the device is
            // busy; dmsetup --retry tries 25 times.
            let mut round = 0;
            loop {
                match dm.device_remove(&id, DmOptions::default()) {
                    Err(e) if errno_of(&e) == Some(Errno::EBUSY) && round < 4 => {
                        round += 1;
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                    r => return r,
                }
            }
        })?;
        self.drop_node(name);
        Ok(())
    }

    /// `dmsetup message NAME 0 ARGS...`.
    pub fn message(&self, name: &str, args: &[&str]) -> Result<()> {
        let mut v = vec!["message", name, "0"];
        v.extend_from_slice(args);
        if let Backend::Program(_) = self.backend {
            return self.run(&v, None).map(drop);
        }
        let by_hand = dmsetup_line(&v);
        self.echo(&by_hand);
        let n = Self::dm_name(DmOp::Message, name, &by_hand)?;
        let msg = args.join(" ");
        self.ioctl(DmOp::Message, Some(name), &by_hand, |dm| dm.target_msg(&DevId::Name(n), Some(0), &msg)).map(drop)
    }

    /// The table (`table`) or status lines of device `name`.
    fn lines_of(&self, name: &str, table: bool) -> Result<Vec<TableLine>> {
        let what = if table { "table" } else { "status" };
        let by_hand = dmsetup_line(&[what, name]);
        self.echo(&by_hand);
        let op = if table { DmOp::Table } else { DmOp::Status };
        let n = Self::dm_name(op, name, &by_hand)?;
        let opts = if table { DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE) } else { DmOptions::default() };
        self.ioctl(op, Some(name), &by_hand, |dm| dm.table_status(&DevId::Name(n), opts)).map(|(_, l)| l)
    }

    /// `dmsetup status NAME`: its lines as dmsetup prints them.
    pub fn status(&self, name: &str) -> Result<String> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["status", name], None);
        }
        Ok(self.lines_of(name, false)?.iter().map(|l| format_line(l) + "\n").collect())
    }

    /// `dmsetup table NAME`: its lines as dmsetup prints them.
    pub fn table(&self, name: &str) -> Result<String> {
        if let Backend::Program(_) = self.backend {
            return self.run(&["table", name], None);
        }
        Ok(self.lines_of(name, true)?.iter().map(|l| format_line(l) + "\n").collect())
    }

    /// The names of all devices, sorted.
    fn names(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .ioctl(DmOp::List, None, "dmsetup ls", |dm| dm.list_devices())?
            .into_iter()
            .map(|(n, _, _)| n.to_string())
            .collect();
        v.sort();
        Ok(v)
    }

    /// `(name, line)` of every target line of type `target`, as
    /// `dmsetup table|status --target TARGET` (`what` = "table" or "status")
    /// shows them (a line is `START LEN TYPE PARAMS`).
    pub fn list_target(&self, what: &str, target: &str) -> Result<Vec<(String, String)>> {
        if let Backend::Program(_) = self.backend {
            let out = self.run(&[what, "--target", target], None)?;
            return Ok(parse_named_lines(&out, target));
        }
        let table = what == "table";
        let by_hand = dmsetup_line(&[what, "--target", target]);
        self.echo(&by_hand);
        let names = self.names()?;
        let opts = if table { DmOptions::default().set_flags(DmFlags::DM_STATUS_TABLE) } else { DmOptions::default() };
        let op = if table { DmOp::Table } else { DmOp::Status };
        let mut v = Vec::new();
        for name in names {
            let n = Self::dm_name(op, &name, &by_hand)?;
            match self.ioctl(op, Some(&name), &by_hand, |dm| dm.table_status(&DevId::Name(n), opts)) {
                Ok((_, lines)) => v.extend(lines.iter().filter(|l| l.2 == target).map(|l| (name.clone(), format_line(l)))),
                // Removed since the list was taken.
                Err(Error::Dm(e)) if e.errno == Some(Errno::ENXIO) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(v)
    }

    /// The info of every device.
    pub fn info_all(&self) -> Result<Vec<DmInfo>> {
        const ARGS: [&str; 8] = ["info", "-c", "--noheadings", "--nameprefixes", "--separator", " ", "-o", "name,major,minor,open,attr"];
        if let Backend::Program(_) = self.backend {
            let out = self.run(&ARGS, None)?;
            return Ok(out.lines().filter_map(parse_info_line).collect());
        }
        let by_hand = dmsetup_line(&ARGS);
        self.echo(&by_hand);
        let mut v = Vec::new();
        for name in self.names()? {
            match self.info_ioctl(&name, &by_hand)? {
                Some(i) => v.push(i),
                None => continue,
            }
        }
        Ok(v)
    }

    /// `DM_DEV_STATUS` of `name`; `None` if there is no such device.
    fn info_ioctl(&self, name: &str, by_hand: &str) -> Result<Option<DmInfo>> {
        let n = Self::dm_name(DmOp::Info, name, by_hand)?;
        match self.ioctl(DmOp::Info, Some(name), by_hand, |dm| dm.device_info(&DevId::Name(n))) {
            Ok(i) => {
                let d = i.device();
                Ok(Some(DmInfo {
                    name: name.to_string(),
                    major: d.major,
                    minor: d.minor,
                    open: i.open_count().max(0) as u32,
                    suspended: i.flags().contains(DmFlags::DM_SUSPEND),
                    inactive_table: i.flags().contains(DmFlags::DM_INACTIVE_PRESENT),
                }))
            }
            Err(Error::Dm(e)) if e.errno == Some(Errno::ENXIO) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The info of `name`, `None` if there is no such device.
    pub fn info(&self, name: &str) -> Result<Option<DmInfo>> {
        if let Backend::Program(_) = self.backend {
            return Ok(self.info_all()?.into_iter().find(|i| i.name == name));
        }
        if DmName::new(name).is_err() {
            return Ok(None); // no device can have that name
        }
        let by_hand = dmsetup_line(&["info", name]);
        self.echo(&by_hand);
        self.info_ioctl(name, &by_hand)
    }

    /// The name of the manager device (any device with a `writeboost-mgr`
    /// table), if there is one.
    pub fn mgr_name(&self) -> Result<Option<String>> {
        Ok(self.list_target("table", "writeboost-mgr")?.into_iter().map(|(n, _)| n).next())
    }
}

/// Parses `dmsetup table|status --target T` output: lines `NAME: START LEN
/// T ...`. A name may itself contain `": "`, so the split is the one
/// followed by two numbers and the target type.
pub fn parse_named_lines(out: &str, target: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut found = None;
        for (i, _) in line.match_indices(": ") {
            let rest = &line[i + 2..];
            let mut w = rest.split_whitespace();
            let ok = w.next().is_some_and(|s| s.parse::<u64>().is_ok())
                && w.next().is_some_and(|s| s.parse::<u64>().is_ok())
                && w.next() == Some(target);
            if ok {
                found = Some((line[..i].to_string(), rest.to_string()));
                break;
            }
        }
        if let Some(f) = found {
            v.push(f);
        }
    }
    v
}

/// Parses one `dmsetup info -c --noheadings --nameprefixes` line:
/// `DM_NAME='x' DM_MAJOR='253' DM_MINOR='0' DM_OPEN='0' DM_ATTR='L--w'`.
pub fn parse_info_line(line: &str) -> Option<DmInfo> {
    let fields = parse_prefixed(line);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let attr = get("DM_ATTR").unwrap_or("");
    Some(DmInfo {
        name: get("DM_NAME")?.to_string(),
        major: get("DM_MAJOR")?.parse().ok()?,
        minor: get("DM_MINOR")?.parse().ok()?,
        open: get("DM_OPEN")?.parse().ok()?,
        suspended: attr.contains('s'),
        inactive_table: attr.contains('I'),
    })
}

/// `KEY='value'` pairs (values single-quoted, `\` escapes the next char),
/// separated by blanks or dmsetup's default `:`.
fn parse_prefixed(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ':') {
            chars.next();
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '\'' => break,
                    _ => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == ':' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key, val));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("writeboost-mgr"), "writeboost-mgr");
        assert_eq!(shell_quote("0 8 writeboost 1 254:0 0"), "'0 8 writeboost 1 254:0 0'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn tables() {
        let t = parse_table("0 262144 writeboost 1 254:0 0").unwrap();
        assert_eq!(t, vec![(0, 262144, "writeboost".to_string(), "1 254:0 0".to_string())]);
        assert_eq!(format_line(&t[0]), "0 262144 writeboost 1 254:0 0");
        // The manager has no parameters: dmsetup prints a blank after the type.
        let m = parse_table("0 1 writeboost-mgr").unwrap();
        assert_eq!(m[0].3, "");
        assert_eq!(format_line(&m[0]), "0 1 writeboost-mgr ");
        // Several lines, blanks collapsed around the first three words only.
        let t = parse_table("  0  8 linear /dev/vda 0\n\n8 8   linear  /dev/vdb  16 \n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1], (8, 8, "linear".to_string(), "/dev/vdb  16".to_string()));
        assert!(parse_table("").is_err());
        assert!(parse_table("x 8 linear").is_err());
        assert!(parse_table("0 8").is_err());
    }

    #[test]
    fn node_decisions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("wb1");
        assert_eq!(node_fix(&p, (252, 1)), NodeFix::Make);
        std::os::unix::fs::symlink("/nonexistent/dm-7", &p).unwrap();
        assert_eq!(node_fix(&p, (252, 1)), NodeFix::Replace, "a dangling link is stale");
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, "x").unwrap();
        assert_eq!(node_fix(&p, (252, 1)), NodeFix::Foreign, "a file is not ours to replace");
        std::fs::remove_file(&p).unwrap();
        // A block node (where this host lets us make one).
        if make_node(&p, (7, 0), nix::sys::stat::SFlag::S_IFBLK).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(node_fix(&p, (7, 0)), NodeFix::Keep);
            assert_eq!(node_fix(&p, (7, 1)), NodeFix::Replace, "a node with another number is stale");
            let l = d.path().join("link");
            std::os::unix::fs::symlink(&p, &l).unwrap();
            assert_eq!(node_fix(&l, (7, 0)), NodeFix::Keep, "udev's link to the node");
        }
    }

    #[test]
    fn termination_signals_wait_for_the_ioctl() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, flag.clone()).unwrap();
        {
            let _held = HeldSignals::hold();
            // Sent to this thread only, so no other test thread takes it.
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!flag.load(Ordering::SeqCst), "SIGHUP arrived while held");
        }
        assert!(flag.load(Ordering::SeqCst), "SIGHUP was lost, not delivered after the ioctl");
    }

    #[test]
    fn udev_rules_are_looked_up() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("etc"), d.path().join("lib"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let dirs = [a.to_str().unwrap(), b.to_str().unwrap()];
        assert_eq!(dm_notify_rule_in(&dirs), None);
        std::fs::write(b.join(DM_NOTIFY_RULE), "").unwrap();
        assert_eq!(dm_notify_rule_in(&dirs), Some(b.join(DM_NOTIFY_RULE)));
    }

    #[test]
    fn by_hand_lines() {
        assert_eq!(dmsetup_line(&["create", "wb1", "--table", "0 8 writeboost 1 254:0 0"]), "dmsetup create wb1 --table '0 8 writeboost 1 254:0 0'");
        assert_eq!(dmsetup_line(&["message", "writeboost-mgr", "0", "switch_to", "1"]), "dmsetup message writeboost-mgr 0 switch_to 1");
    }

    #[test]
    fn named_lines() {
        let out = "wb1: 0 1048576 writeboost 1 254:0 1\nodd: name: 0 8 writeboost 2 254:1 0\n";
        let v = parse_named_lines(out, "writeboost");
        assert_eq!(v[0], ("wb1".to_string(), "0 1048576 writeboost 1 254:0 1".to_string()));
        assert_eq!(v[1], ("odd: name".to_string(), "0 8 writeboost 2 254:1 0".to_string()));
        assert!(parse_named_lines("No devices found\n", "writeboost").is_empty());
        // The manager's target type differs; the status of the manager spans lines.
        let mgr = "writeboost-mgr: 0 1 writeboost-mgr \ncurrent cache_id_ptr: 0\n";
        assert_eq!(parse_named_lines(mgr, "writeboost-mgr").len(), 1);
        assert!(parse_named_lines(mgr, "writeboost").is_empty());
    }

    #[test]
    fn info_lines() {
        let i = parse_info_line("DM_NAME='wb1' DM_MAJOR='253' DM_MINOR='1' DM_OPEN='2' DM_ATTR='L-sw'").unwrap();
        assert_eq!(i, DmInfo { name: "wb1".into(), major: 253, minor: 1, open: 2, suspended: true, inactive_table: false });
        let i = parse_info_line("DM_NAME='a b\\'c' DM_MAJOR='253' DM_MINOR='0' DM_OPEN='0' DM_ATTR='LI-w'").unwrap();
        assert_eq!(i.name, "a b'c");
        assert!(i.inactive_table && !i.suspended);
        assert!(parse_info_line("No devices found").is_none());
        // dmsetup's default separator.
        let i = parse_info_line("DM_NAME='x:1':DM_MAJOR='252':DM_MINOR='0':DM_OPEN='0':DM_ATTR='L--w'").unwrap();
        assert_eq!((i.name.as_str(), i.major, i.minor), ("x:1", 252, 0));
    }
}
