//! Block devices and files: O_DIRECT when the file allows it (falling back
//! to buffered I/O plus fdatasync for regular files on tmpfs and in host
//! tests), aligned buffers, sizes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

use crate::logfmt::ReadAt;

pub const ALIGN: usize = 4096;

/// A zeroed buffer whose start is ALIGN-aligned.
pub struct Buf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl Buf {
    pub fn new(len: usize) -> Self {
        let v = vec![0u8; len + ALIGN];
        let off = v.as_ptr().align_offset(ALIGN);
        Buf { v, off, len }
    }
    pub fn get(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }
    pub fn get_mut(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
}

pub struct Dev {
    pub file: File,
    pub path: String,
    pub direct: bool,
}

const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

impl Dev {
    pub fn open(path: &str, write: bool) -> Result<Dev, String> {
        let mut o = OpenOptions::new();
        o.read(true).write(write);
        match o.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => Ok(Dev { file, path: path.to_string(), direct: true }),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let file = o.open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
                Ok(Dev { file, path: path.to_string(), direct: false })
            }
            Err(e) => Err(format!("cannot open {path}: {e}")),
        }
    }

    pub fn size(&self) -> Result<u64, String> {
        let md = self.file.metadata().map_err(|e| format!("{}: {e}", self.path))?;
        if md.file_type().is_block_device() {
            let mut sz: u64 = 0;
            // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
            let r = unsafe { libc::ioctl(self.file.as_raw_fd(), BLKGETSIZE64, &mut sz as *mut u64) };
            if r != 0 {
                return Err(format!("{}: BLKGETSIZE64: {}", self.path, io::Error::last_os_error()));
            }
            Ok(sz)
        } else {
            Ok(md.len())
        }
    }

    pub fn read_exact_at(&self, buf: &mut [u8], off: u64) -> Result<(), String> {
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| format!("{}: read of {} bytes at {off}: {e}", self.path, buf.len()))
    }

    pub fn write_all_at(&self, buf: &[u8], off: u64) -> Result<(), String> {
        self.file
            .write_all_at(buf, off)
            .map_err(|e| format!("{}: write of {} bytes at {off}: {e}", self.path, buf.len()))
    }

    pub fn sync(&self) -> Result<(), String> {
        self.file.sync_data().map_err(|e| format!("{}: fdatasync: {e}", self.path))
    }
}

impl ReadAt for Dev {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        if !self.direct {
            return self.file.read_exact_at(buf, off);
        }
        // O_DIRECT: read whole aligned blocks around the range.
        let a = ALIGN as u64;
        let start = off / a * a;
        let end = (off + buf.len() as u64).div_ceil(a) * a;
        let mut b = Buf::new((end - start) as usize);
        self.file.read_exact_at(b.get_mut(), start)?;
        let o = (off - start) as usize;
        buf.copy_from_slice(&b.get()[o..o + buf.len()]);
        Ok(())
    }
}

/// Reads through a 1 MiB window (for the many small header reads of a log
/// scan: one I/O per window instead of one per entry).
pub struct Window<'a> {
    dev: &'a Dev,
    size: u64,
    win: std::cell::RefCell<(u64, usize, Buf)>,
}

const WINDOW: usize = 1 << 20;

impl<'a> Window<'a> {
    pub fn new(dev: &'a Dev, size: u64) -> Self {
        Window { dev, size, win: std::cell::RefCell::new((0, 0, Buf::new(WINDOW))) }
    }
}

impl ReadAt for Window<'_> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let mut w = self.win.borrow_mut();
        let end = off + buf.len() as u64;
        if buf.len() > WINDOW / 2 {
            return self.dev.read_at(buf, off);
        }
        if !(off >= w.0 && end <= w.0 + w.1 as u64) {
            let start = off / ALIGN as u64 * ALIGN as u64;
            let len = (self.size.saturating_sub(start)).min(WINDOW as u64) as usize;
            if start + (len as u64) < end {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            self.dev.file.read_exact_at(&mut w.2.get_mut()[..len], start)?;
            w.0 = start;
            w.1 = len;
        }
        let o = (off - w.0) as usize;
        buf.copy_from_slice(&w.2.get()[o..o + buf.len()]);
        Ok(())
    }
}
