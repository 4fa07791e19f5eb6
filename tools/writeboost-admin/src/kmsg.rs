//! The kernel's own explanation of a refusal.
//!
//! Every refused writeboost message, table or sysfs write logs one line
//! starting with `dm_writeboost: ` (device-mapper adds `device-mapper: `
//! lines for refused tables). A [`KernelLog`] is opened before an operation;
//! afterwards [`KernelLog::new_lines`] returns exactly the relevant lines
//! logged since, read from `/dev/kmsg` (no `dmesg | tail` guessing).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// A read position in the kernel log, at its end when opened.
pub struct KernelLog {
    file: Option<File>,
}

impl KernelLog {
    /// Opens `/dev/kmsg` at its end. Without access to it (not root, no
    /// devtmpfs) the log just stays empty.
    pub fn open() -> Self {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .and_then(|mut f| f.seek(SeekFrom::End(0)).map(|_| f))
            .ok();
        KernelLog { file }
    }

    /// The writeboost and device-mapper lines logged since the last call.
    pub fn new_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = self.file.as_mut() else { return out };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(text) = parse_record(&String::from_utf8_lossy(&buf[..n])) {
                        if is_relevant(&text) {
                            out.push(text);
                        }
                    }
                }
                // EPIPE: records were overwritten before we read them; go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // EAGAIN: nothing more
            }
        }
        out
    }
}

/// The message text of one `/dev/kmsg` record
/// (`<prio>,<seq>,<usec>,<flags>;<text>\n[ KEY=value\n]...`).
pub fn parse_record(record: &str) -> Option<String> {
    let (header, rest) = record.split_once(';')?;
    if header.split(',').count() < 3 {
        return None;
    }
    let text = rest.lines().next().unwrap_or("");
    Some(text.trim_end().to_string())
}

/// Whether a kernel log line is about writeboost or device-mapper.
pub fn is_relevant(text: &str) -> bool {
    text.starts_with("dm_writeboost") || text.starts_with("device-mapper:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        assert_eq!(
            parse_record("3,1234,5678901,-;dm_writeboost: writeboost-mgr: free_cache: cache 1 still serves device ids 1\n").as_deref(),
            Some("dm_writeboost: writeboost-mgr: free_cache: cache 1 still serves device ids 1")
        );
        assert_eq!(
            parse_record("3,77,100,-;device-mapper: table: 253:1: writeboost: cannot detach\n SUBSYSTEM=block\n DEVICE=b253:1\n").as_deref(),
            Some("device-mapper: table: 253:1: writeboost: cannot detach")
        );
        assert_eq!(parse_record("garbage"), None);
        assert_eq!(parse_record("x;y"), None);
    }

    #[test]
    fn relevance() {
        assert!(is_relevant("dm_writeboost: cache 1 resumed on /dev/vdb"));
        assert!(is_relevant("device-mapper: ioctl: error adding target to table"));
        assert!(!is_relevant("virtio_blk virtio1: [vdb] 262144 512-byte logical blocks"));
    }
}
