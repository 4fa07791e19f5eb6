//! Device-mapper operations, through `dmsetup`.
//!
//! Every call returns a value: the command's standard output, or an
//! [`Error::Command`] with the command line, its exit status, its error
//! output and the lines the kernel logged while it ran. Nothing is run
//! through a shell, so no exit status is ever lost.
//!
//! `dmsetup` runs in its own process group: a Ctrl-C at the terminal
//! reaches only the tool, which decides when it is safe to stop.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{CommandError, Error, Result};
use crate::kmsg::KernelLog;

/// The name of the manager device the tools create and look for.
pub const MGR_NAME: &str = "writeboost-mgr";

/// How device-mapper is driven.
#[derive(Clone, Debug)]
pub struct Dm {
    bin: OsString,
    verbose: bool,
}

/// `dmsetup info` of one device.
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

impl Dm {
    /// `dmsetup` from `$PATH` (or `$WRITEBOOST_DMSETUP`); `verbose` echoes
    /// each command to standard error before running it.
    pub fn new(verbose: bool) -> Self {
        let bin = std::env::var_os("WRITEBOOST_DMSETUP").unwrap_or_else(|| "dmsetup".into());
        Dm { bin, verbose }
    }

    /// Whether commands are echoed.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// Runs `dmsetup args...` (with `stdin` fed to it) and returns its
    /// standard output.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let cmdline = std::iter::once("dmsetup").chain(args.iter().copied()).map(shell_quote).collect::<Vec<_>>().join(" ");
        if self.verbose {
            eprintln!("+ {}", cmdline);
        }
        let mut klog = KernelLog::open();
        let mut cmd = Command::new(&self.bin);
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
                    "dmsetup not found (install the dmsetup package, or set WRITEBOOST_DMSETUP)".to_string()
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

    /// `dmsetup create NAME --table TABLE`, then `dmsetup mknodes NAME` if
    /// `/dev/mapper/NAME` did not appear (no udev).
    pub fn create(&self, name: &str, table: &str) -> Result<()> {
        self.run(&["create", name, "--table", table], None)?;
        self.ensure_node(name)
    }

    /// Makes sure `/dev/mapper/NAME` is the block node of device NAME.
    /// Without udev, nodes of removed devices stay behind, so a node can
    /// exist with the number of a device long gone: `dmsetup mknodes`
    /// corrects it.
    pub fn ensure_node(&self, name: &str) -> Result<()> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let node = Path::new("/dev/mapper").join(name);
        let want = self.info(name)?.map(|i| (i.major, i.minor));
        let have = std::fs::metadata(&node).ok().filter(|m| m.file_type().is_block_device()).map(|m| {
            let r = m.rdev();
            (nix::sys::stat::major(r) as u32, nix::sys::stat::minor(r) as u32)
        });
        if want.is_none() || have != want {
            self.run(&["mknodes", name], None)?;
        }
        Ok(())
    }

    /// After a removal: drops a node of `name` left behind (no udev).
    pub fn forget_node(&self, name: &str) {
        if Path::new("/dev/mapper").join(name).exists() {
            // mknodes removes nodes of devices that no longer exist.
            let _ = self.run(&["mknodes"], None);
        }
    }

    /// `dmsetup load NAME --table TABLE` (an inactive table).
    pub fn load(&self, name: &str, table: &str) -> Result<()> {
        self.run(&["load", name, "--table", table], None).map(drop)
    }

    /// `dmsetup suspend NAME` (waits for I/O in flight; writeboost flushes
    /// its RAM buffer).
    pub fn suspend(&self, name: &str) -> Result<()> {
        self.run(&["suspend", name], None).map(drop)
    }

    /// `dmsetup resume NAME` (swaps in the inactive table, if any).
    pub fn resume(&self, name: &str) -> Result<()> {
        self.run(&["resume", name], None).map(drop)
    }

    /// `dmsetup clear NAME` (drops the inactive table).
    pub fn clear(&self, name: &str) -> Result<()> {
        self.run(&["clear", name], None).map(drop)
    }

    /// `dmsetup remove --retry NAME`, and its node is gone afterwards.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.run(&["remove", "--retry", name], None)?;
        self.forget_node(name);
        Ok(())
    }

    /// `dmsetup message NAME 0 ARGS...`.
    pub fn message(&self, name: &str, args: &[&str]) -> Result<()> {
        let mut v = vec!["message", name, "0"];
        v.extend_from_slice(args);
        self.run(&v, None).map(drop)
    }

    /// `dmsetup status NAME`.
    pub fn status(&self, name: &str) -> Result<String> {
        self.run(&["status", name], None)
    }

    /// `dmsetup table NAME`.
    pub fn table(&self, name: &str) -> Result<String> {
        self.run(&["table", name], None)
    }

    /// `(name, line)` of every target line of type `target`, from
    /// `dmsetup table|status --target TARGET` (`what` = "table" or "status").
    pub fn list_target(&self, what: &str, target: &str) -> Result<Vec<(String, String)>> {
        let out = self.run(&[what, "--target", target], None)?;
        Ok(parse_named_lines(&out, target))
    }

    /// `dmsetup info` of every device, or of one (`None` if it does not exist).
    pub fn info_all(&self) -> Result<Vec<DmInfo>> {
        let out = self.run(
            &["info", "-c", "--noheadings", "--nameprefixes", "--separator", " ", "-o", "name,major,minor,open,attr"],
            None,
        )?;
        Ok(out.lines().filter_map(parse_info_line).collect())
    }

    /// `dmsetup info` of `name`, `None` if there is no such device.
    pub fn info(&self, name: &str) -> Result<Option<DmInfo>> {
        Ok(self.info_all()?.into_iter().find(|i| i.name == name))
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
