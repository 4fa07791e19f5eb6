//! Read-only access to a cache device: a block device or an image file.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use wbformat::format::{BLOCK_SIZE, SECTORS_PER_BLOCK, SECTOR_SIZE};

/// An open cache device or image.
pub struct CacheDevice {
    file: File,
    path: PathBuf,
    sectors: u64,
}

impl CacheDevice {
    /// Opens `path` read-only. Its size is found by seeking to its end, which
    /// works for block devices and regular files alike.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let bytes = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("cannot find the size of {}", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            sectors: bytes / SECTOR_SIZE as u64,
        })
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Fills `buf` (a whole number of sectors) from `sector` on.
    pub fn read_at(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        let n = (buf.len() / SECTOR_SIZE) as u64;
        if !buf.len().is_multiple_of(SECTOR_SIZE) {
            bail!(
                "internal error: read of {} bytes is not whole sectors",
                buf.len()
            );
        }
        if sector.checked_add(n).is_none_or(|end| end > self.sectors) {
            bail!(
                "{}: read of sectors {}..{} past the end of the device ({} sectors)",
                self.path.display(),
                sector,
                sector.saturating_add(n),
                self.sectors
            );
        }
        self.file
            .read_exact_at(buf, sector * SECTOR_SIZE as u64)
            .with_context(|| format!("{}: read error at sector {}", self.path.display(), sector))
    }

    /// Reads 4 KiB block `block` (in blocks from the device start).
    pub fn read_block(&self, block: u64) -> Result<Vec<u8>> {
        let mut b = vec![0u8; BLOCK_SIZE];
        self.read_at(block * SECTORS_PER_BLOCK, &mut b)?;
        Ok(b)
    }
}
