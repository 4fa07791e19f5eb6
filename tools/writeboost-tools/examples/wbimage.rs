//! `wbimage`: writes a cache image with dirty data, for guest tests of the
//! kernel's resume of caches formatted by earlier versions (not installed).
//!
//! `wbimage OUT --segments N --device-sectors S [--crc32c | --version V] --lines L`
//! builds an image of N segment slots whose log holds segment 1 with L
//! dirty 4 KiB lines of device 1 (blocks 0..L, all 8 sectors dirty; device
//! 1 registered with S sectors, no identity, as records before identities
//! were), and writes the data a reader of device 1 must then see for
//! blocks 0..L to `OUT.expect` (`writeboost_tools::image::line_data`).

use anyhow::{bail, Result};
use clap::Parser;
use std::path::PathBuf;
use writeboost_tools::image::{dirty, line_data, ImageBuilder};

#[derive(Parser)]
struct Args {
    /// The image file to write (created or truncated).
    out: PathBuf,
    /// Segment slots of the image.
    #[arg(long)]
    segments: u64,
    /// Size of device 1's backing disk in sectors, as registered.
    #[arg(long)]
    device_sectors: u64,
    /// Dirty lines in segment 1 (1..=255).
    #[arg(long)]
    lines: u32,
    /// A superblock version 3 image (CRC32C segments) instead of the current one.
    #[arg(long)]
    crc32c: bool,
    /// The superblock version of the image (2 to 5; 3 is --crc32c).
    #[arg(long, conflicts_with = "crc32c")]
    version: Option<u32>,
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.lines == 0 || a.lines > 255 || u64::from(a.lines) * 8 > a.device_sectors {
        bail!("--lines must be 1..=255 and fit the device");
    }
    let mut b = ImageBuilder::with_segments(a.segments)?;
    b.crc32c_segments(a.crc32c).register(1, a.device_sectors)?.generation(1).previous_record(false);
    if let Some(v) = a.version {
        if !(2..=5).contains(&v) {
            bail!("--version must be 2 to 5");
        }
        b.superblock_version(v);
    }
    let lines: Vec<_> = (0..u64::from(a.lines)).map(|blk| dirty(1, blk, 0xff)).collect();
    b.segment(1, &lines);
    b.write_file(&a.out)?;
    let mut expect = Vec::new();
    for k in 0..a.lines {
        expect.extend_from_slice(&line_data(1, k));
    }
    let mut e = a.out.clone().into_os_string();
    e.push(".expect");
    std::fs::write(e, expect)?;
    Ok(())
}
