//! Opening the device (O_DIRECT with EINVAL fallback), aligned buffers,
//! and the small stdout/stderr helpers.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Buffer alignment: enough for 4 KiB logical-block devices.
pub const BUF_ALIGN: usize = 4096;

/// Print one line to stdout and flush it (so a crash test sees it at once).
pub fn out(line: &str) -> Result<(), String> {
    let mut o = io::stdout().lock();
    writeln!(o, "{line}")
        .and_then(|_| o.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

/// Print one line to stderr; errors are ignored.
pub fn note(line: &str) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// A zeroed buffer whose start is aligned to BUF_ALIGN (as O_DIRECT needs).
pub struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize) -> Result<Self, String> {
        let total = len
            .checked_add(BUF_ALIGN)
            .ok_or_else(|| format!("buffer of {len} bytes is too large"))?;
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(total)
            .map_err(|_| format!("out of memory for a {len}-byte buffer"))?;
        v.resize(total, 0);
        let off = v.as_ptr().align_offset(BUF_ALIGN);
        if off > BUF_ALIGN {
            return Err("cannot align I/O buffer".to_string());
        }
        Ok(AlignedBuf { v, off, len })
    }

    pub fn get(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }

    pub fn get_mut(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Block,
    Regular,
}

/// An open device or file.
pub struct Dev {
    pub file: File,
    pub path: PathBuf,
    pub direct: bool,
    pub kind: Kind,
    /// Size in bytes at open time.
    pub size: u64,
}

impl Dev {
    /// Open for reading (`write == false`) or writing, with O_DIRECT; if the
    /// open fails with EINVAL (file system without O_DIRECT support), say so
    /// on stderr and open without it. `dsync` adds O_DSYNC.
    pub fn open(path: &Path, write: bool, dsync: bool) -> Result<Dev, String> {
        let base = if dsync { libc::O_DSYNC } else { 0 };
        let try_open = |extra: i32| {
            let mut o = OpenOptions::new();
            if write {
                o.write(true);
            } else {
                o.read(true);
            }
            o.custom_flags(base | extra).open(path)
        };
        let shown = path.display();
        let (file, direct) = match try_open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                note(&format!(
                    "wbpattern: note: O_DIRECT open of {shown} failed with EINVAL; using buffered I/O"
                ));
                let f = try_open(0).map_err(|e| format!("cannot open {shown}: {e}"))?;
                (f, false)
            }
            Err(e) => return Err(format!("cannot open {shown}: {e}")),
        };
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {shown}: {e}"))?;
        let ft = meta.file_type();
        let kind = if ft.is_block_device() {
            Kind::Block
        } else if ft.is_file() {
            Kind::Regular
        } else {
            return Err(format!(
                "{shown} is neither a block device nor a regular file"
            ));
        };
        let size = match kind {
            Kind::Regular => meta.len(),
            Kind::Block => (&file)
                .seek(SeekFrom::End(0))
                .map_err(|e| format!("cannot get the size of {shown}: {e}"))?,
        };
        Ok(Dev {
            file,
            path: path.to_path_buf(),
            direct,
            kind,
            size,
        })
    }

    /// Make sure the device holds `end_bytes`: a regular file may be
    /// extended (with zeros) when `extend` is set; a block device never.
    pub fn ensure_size(&mut self, end_bytes: u64, extend: bool) -> Result<(), String> {
        if self.size >= end_bytes {
            return Ok(());
        }
        if self.kind == Kind::Regular && extend {
            self.file.set_len(end_bytes).map_err(|e| {
                format!(
                    "cannot extend {} to {end_bytes} bytes: {e}",
                    self.path.display()
                )
            })?;
            self.size = end_bytes;
            return Ok(());
        }
        Err(format!(
            "region ends at byte {end_bytes} (sector {}) but {} has only {} bytes ({} sectors)",
            end_bytes / 512,
            self.path.display(),
            self.size,
            self.size / 512
        ))
    }

    /// An I/O error message, with a hint when O_DIRECT alignment is the
    /// likely cause.
    pub fn io_error(&self, what: &str, e: &io::Error) -> String {
        let mut m = format!("{what} on {}: {e}", self.path.display());
        if self.direct && e.raw_os_error() == Some(libc::EINVAL) {
            m.push_str(
                " (O_DIRECT needs offsets and sizes aligned to the device's logical block size: \
                 for a 4 KiB-sector device use --align 4096, sizes and a region in multiples of 4 KiB)",
            );
        }
        m
    }
}
