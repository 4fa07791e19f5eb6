//! The dm-log-writes log device, as the kernel writes it
//! (drivers/md/dm-log-writes.c, Documentation/admin-guide/device-mapper/
//! log-writes.rst):
//!
//! * block 0: super { le64 magic, le64 version (1), le64 nr_entries,
//!   le32 sectorsize } (sectorsize: the logical block size of the data
//!   device; "blocks" below are of that size);
//! * then nr_entries entries, each one block holding
//!   { le64 sector, le64 nr_sectors, le64 flags, le64 data_len } (sector
//!   and nr_sectors in blocks), followed by
//!   - nothing for a mark (its text follows the header inside the block,
//!     data_len bytes) or a discard,
//!   - nr_sectors blocks of data otherwise (an empty flush has none).
//!
//! Entries are in the order the target logged them: writes once a later
//! flush completed (or at once for FUA), so applying entries 0..n gives the
//! data device as a power cut after entry n-1 could have left it.

use std::io;

pub const MAGIC: u64 = 0x006a_7366_7773_6872;
pub const VERSION: u64 = 1;
pub const FLAG_FLUSH: u64 = 1 << 0;
pub const FLAG_FUA: u64 = 1 << 1;
pub const FLAG_DISCARD: u64 = 1 << 2;
pub const FLAG_MARK: u64 = 1 << 3;
pub const FLAG_METADATA: u64 = 1 << 4;
const KNOWN_FLAGS: u64 = FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK | FLAG_METADATA;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log (0-based).
    pub index: usize,
    pub flags: u64,
    /// Target sector and length, in blocks of `sectorsize`.
    pub sector: u64,
    pub nr_sectors: u64,
    /// Byte offset of the data in the log (writes only).
    pub data_offset: u64,
    pub mark: Option<String>,
}

impl Entry {
    pub fn is_barrier(&self) -> bool {
        self.flags & (FLAG_FLUSH | FLAG_FUA) != 0 && self.flags & FLAG_MARK == 0
    }

    pub fn is_data(&self) -> bool {
        self.flags & FLAG_MARK == 0 && (self.nr_sectors > 0)
    }

    pub fn describe(&self, ss: u64) -> String {
        if let Some(m) = &self.mark {
            return format!("mark {m}");
        }
        let mut f = Vec::new();
        if self.flags & FLAG_FLUSH != 0 {
            f.push("FLUSH");
        }
        if self.flags & FLAG_FUA != 0 {
            f.push("FUA");
        }
        if self.flags & FLAG_DISCARD != 0 {
            f.push("DISCARD");
        }
        if self.flags & FLAG_METADATA != 0 {
            f.push("META");
        }
        let what = if f.is_empty() { "WRITE".to_string() } else { f.join("|") };
        if self.nr_sectors == 0 {
            what
        } else {
            let k = ss / 512;
            format!("{what} {}+{}", self.sector * k, self.nr_sectors * k)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Log {
    pub sectorsize: u64,
    pub entries: Vec<Entry>,
}

/// Random access to the log (a file or block device).
pub trait ReadAt {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
}

fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Reads the super and every entry header (not the data). `len` is the log
/// device size in bytes.
pub fn parse(r: &dyn ReadAt, len: u64) -> Result<Log, String> {
    let mut sb = vec![0u8; 512];
    r.read_at(&mut sb, 0).map_err(|e| format!("cannot read the log super block: {e}"))?;
    if le64(&sb, 0) != MAGIC {
        return Err(format!("not a dm-log-writes log (magic {:#x})", le64(&sb, 0)));
    }
    if le64(&sb, 8) != VERSION {
        return Err(format!("unsupported dm-log-writes version {}", le64(&sb, 8)));
    }
    let nr = le64(&sb, 16);
    let ss = u32::from_le_bytes(sb[24..28].try_into().unwrap()) as u64;
    if !(512..=65536).contains(&ss) || !ss.is_power_of_two() {
        return Err(format!("bad log sector size {ss}"));
    }
    let mut entries = Vec::with_capacity(nr.min(1 << 22) as usize);
    let mut pos = ss;
    let mut hdr = vec![0u8; ss as usize];
    for index in 0..nr as usize {
        if pos + ss > len {
            return Err(format!("entry {index} of {nr} lies beyond the end of the log ({len} bytes)"));
        }
        r.read_at(&mut hdr, pos).map_err(|e| format!("cannot read log entry {index}: {e}"))?;
        let sector = le64(&hdr, 0);
        let nr_sectors = le64(&hdr, 8);
        let flags = le64(&hdr, 16);
        let data_len = le64(&hdr, 24);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(format!("log entry {index} at byte {pos}: unknown flags {flags:#x}"));
        }
        let mut e = Entry { index, flags, sector, nr_sectors, data_offset: 0, mark: None };
        pos += ss;
        if flags & FLAG_MARK != 0 {
            if data_len > ss - 32 {
                return Err(format!("log entry {index}: mark of {data_len} bytes"));
            }
            let text = &hdr[32..32 + data_len as usize];
            e.mark = Some(String::from_utf8_lossy(text).into_owned());
        } else if data_len != 0 {
            return Err(format!("log entry {index}: inline data ({data_len} bytes) is not supported"));
        } else if flags & FLAG_DISCARD == 0 {
            e.data_offset = pos;
            pos = nr_sectors
                .checked_mul(ss)
                .and_then(|d| pos.checked_add(d))
                .filter(|&p| p <= len)
                .ok_or_else(|| format!("log entry {index}: {nr_sectors} blocks of data run past the end of the log"))?;
        }
        entries.push(e);
    }
    Ok(Log { sectorsize: ss, entries })
}

/// Builds a log image in memory (for tests): the same layout the kernel
/// writes.
#[cfg(test)]
pub struct Builder {
    pub ss: u64,
    pub buf: Vec<u8>,
    pub nr: u64,
}

#[cfg(test)]
impl Builder {
    pub fn new(ss: u64) -> Self {
        Builder { ss, buf: vec![0u8; ss as usize], nr: 0 }
    }

    fn header(&mut self, sector: u64, nr: u64, flags: u64, text: &[u8]) {
        let mut h = vec![0u8; self.ss as usize];
        h[0..8].copy_from_slice(&sector.to_le_bytes());
        h[8..16].copy_from_slice(&nr.to_le_bytes());
        h[16..24].copy_from_slice(&flags.to_le_bytes());
        h[24..32].copy_from_slice(&(text.len() as u64).to_le_bytes());
        h[32..32 + text.len()].copy_from_slice(text);
        self.buf.extend_from_slice(&h);
        self.nr += 1;
    }

    pub fn write(&mut self, sector: u64, data: &[u8], flags: u64) {
        assert_eq!(data.len() as u64 % self.ss, 0);
        self.header(sector, data.len() as u64 / self.ss, flags, b"");
        self.buf.extend_from_slice(data);
    }

    pub fn flush(&mut self) {
        self.header(0, 0, FLAG_FLUSH, b"");
    }

    pub fn discard(&mut self, sector: u64, nr: u64) {
        self.header(sector, nr, FLAG_DISCARD, b"");
    }

    pub fn mark(&mut self, text: &str) {
        self.header(0, 0, FLAG_MARK, text.as_bytes());
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        self.buf[8..16].copy_from_slice(&VERSION.to_le_bytes());
        self.buf[16..24].copy_from_slice(&self.nr.to_le_bytes());
        self.buf[24..28].copy_from_slice(&(self.ss as u32).to_le_bytes());
        self.buf
    }
}

#[cfg(test)]
impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let o = off as usize;
        if o + buf.len() > self.len() {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buf.copy_from_slice(&self[o..o + buf.len()]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_built_log() {
        let mut b = Builder::new(512);
        b.mark("hello");
        b.write(10, &[7u8; 1024], 0);
        b.discard(4, 2);
        b.flush();
        b.write(3, &[1u8; 512], FLAG_FUA);
        b.mark("dm-log-writes-end");
        let img = b.finish();
        let log = parse(&img, img.len() as u64).unwrap();
        assert_eq!(log.entries.len(), 6);
        assert_eq!(log.entries[0].mark.as_deref(), Some("hello"));
        assert_eq!(log.entries[1].nr_sectors, 2);
        assert_eq!(log.entries[1].data_offset, 3 * 512);
        assert!(log.entries[2].flags & FLAG_DISCARD != 0);
        assert!(log.entries[3].is_barrier());
        assert!(log.entries[4].is_barrier());
        assert_eq!(log.entries[4].data_offset, 8 * 512);
        assert_eq!(log.entries[5].mark.as_deref(), Some("dm-log-writes-end"));
    }

    #[test]
    fn truncated_and_bad() {
        let mut b = Builder::new(512);
        b.write(0, &[1u8; 4096], 0);
        let img = b.finish();
        assert!(parse(&img, img.len() as u64 - 512).is_err());
        let mut bad = img.clone();
        bad[0] ^= 1;
        assert!(parse(&bad, bad.len() as u64).is_err());
    }
}
