//! Incremental replay of a dm-log-writes log onto a scratch device: apply
//! entries up to a crash point, check, then go on from there (never from
//! entry 0 again).

use crate::dev::{Buf, Dev};
use crate::logfmt::{Entry, Log, FLAG_DISCARD, FLAG_FLUSH, FLAG_FUA, FLAG_MARK};

const CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardAs {
    /// Write zeroes over the range.
    Zero,
    /// Leave the old content (a discard that did nothing).
    Keep,
}

pub struct Replayer<'a> {
    pub log: &'a Log,
    logdev: &'a Dev,
    target: &'a Dev,
    target_size: u64,
    /// Entries applied so far: the target is the data device as it was
    /// after entry `applied - 1`.
    pub applied: usize,
    pub discard: DiscardAs,
    /// Entries to leave out (fault injection, to prove the checker sees it).
    pub skip: Vec<usize>,
    /// Leave out every n-th write entry (0: none), same purpose.
    pub drop_every: usize,
    writes_seen: usize,
    /// Entries left out so far.
    pub dropped: Vec<usize>,
    buf: Buf,
    zero: Buf,
    pub bytes_written: u64,
    /// Ranges of writes logged at completion (FUA, or data with a preflush)
    /// since the last FLUSH entry.
    epoch_fua: Vec<(u64, u64)>,
    /// Plain writes or discards logged after an overlapping write of the
    /// first kind in one flush epoch: dm-log-writes logs plain writes at
    /// the next flush, so the log cannot say which of the two came last.
    /// Such a pair makes the replayed state doubtful (entry indices).
    pub ambiguous: Vec<usize>,
}

impl<'a> Replayer<'a> {
    pub fn new(log: &'a Log, logdev: &'a Dev, target: &'a Dev, discard: DiscardAs) -> Result<Self, String> {
        let target_size = target.size()?;
        Ok(Replayer {
            log,
            logdev,
            target,
            target_size,
            applied: 0,
            discard,
            skip: Vec::new(),
            drop_every: 0,
            writes_seen: 0,
            dropped: Vec::new(),
            buf: Buf::new(CHUNK),
            zero: Buf::new(CHUNK),
            bytes_written: 0,
            epoch_fua: Vec::new(),
            ambiguous: Vec::new(),
        })
    }

    fn track_order(&mut self, e: &Entry) {
        if e.flags & FLAG_MARK != 0 {
            return;
        }
        if e.flags & FLAG_FLUSH != 0 {
            self.epoch_fua.clear();
        }
        if e.nr_sectors == 0 {
            return;
        }
        let r = (e.sector, e.sector + e.nr_sectors);
        if e.flags & (FLAG_FLUSH | FLAG_FUA) != 0 {
            self.epoch_fua.push(r);
        } else if self.epoch_fua.iter().any(|&(a, b)| a < r.1 && r.0 < b) {
            self.ambiguous.push(e.index);
        }
    }

    fn apply(&mut self, e: &Entry) -> Result<(), String> {
        self.track_order(e);
        if e.flags & FLAG_MARK != 0 || e.nr_sectors == 0 {
            return Ok(());
        }
        if e.flags & FLAG_DISCARD == 0 {
            self.writes_seen += 1;
        }
        let drop = self.skip.contains(&e.index)
            || (self.drop_every > 0 && e.flags & FLAG_DISCARD == 0 && self.writes_seen.is_multiple_of(self.drop_every));
        if drop {
            self.dropped.push(e.index);
            return Ok(());
        }
        let ss = self.log.sectorsize;
        let dst = e.sector * ss;
        let len = e.nr_sectors * ss;
        if dst + len > self.target_size {
            return Err(format!(
                "log entry {} ({}) lies beyond the replay target ({} bytes)",
                e.index,
                e.describe(ss),
                self.target_size
            ));
        }
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            if e.flags & FLAG_DISCARD != 0 {
                if self.discard == DiscardAs::Keep {
                    return Ok(());
                }
                self.target.write_all_at(&self.zero.get()[..n], dst + done)?;
            } else {
                let b = &mut self.buf.get_mut()[..n];
                self.logdev
                    .read_exact_at(b, e.data_offset + done)
                    .map_err(|m| format!("log entry {}: {m}", e.index))?;
                self.target.write_all_at(b, dst + done)?;
            }
            done += n as u64;
        }
        self.bytes_written += len;
        Ok(())
    }

    /// Applies entries `applied..upto` and makes them visible to other
    /// openers of the target (fdatasync when it is not O_DIRECT).
    pub fn advance_to(&mut self, upto: usize) -> Result<(), String> {
        if upto < self.applied {
            return Err(format!("cannot replay backwards (at {}, asked for {upto})", self.applied));
        }
        let upto = upto.min(self.log.entries.len());
        let log = self.log;
        for e in &log.entries[self.applied..upto] {
            self.apply(e)?;
        }
        self.applied = upto;
        if !self.target.direct {
            self.target.sync()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfmt::{parse, Builder, FLAG_FUA};
    use std::io::Write;

    fn tmpfile(name: &str, data: &[u8]) -> String {
        let p = std::env::temp_dir().join(format!("wbcrash-test-{}-{name}", std::process::id()));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(data).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn incremental_replay() {
        let mut b = Builder::new(512);
        b.write(0, &[1u8; 1024], 0);
        b.flush();
        b.write(1, &[2u8; 512], FLAG_FUA);
        b.discard(0, 2);
        b.mark("x");
        let img = b.finish();
        let log = parse(&img, img.len() as u64).unwrap();
        let lp = tmpfile("log", &img);
        let tp = tmpfile("target", &[9u8; 4096]);
        let logdev = Dev::open(&lp, false).unwrap();
        let target = Dev::open(&tp, true).unwrap();
        let mut r = Replayer::new(&log, &logdev, &target, DiscardAs::Zero).unwrap();
        let read = |t: &Dev| {
            let mut v = Buf::new(4096);
            t.read_exact_at(v.get_mut(), 0).unwrap();
            v.get().to_vec()
        };
        r.advance_to(1).unwrap();
        let v = read(&target);
        assert!(v[..1024].iter().all(|&x| x == 1) && v[1024] == 9);
        r.advance_to(3).unwrap();
        let v = read(&target);
        assert!(v[..512].iter().all(|&x| x == 1) && v[512..1024].iter().all(|&x| x == 2));
        r.advance_to(5).unwrap();
        let v = read(&target);
        assert!(v[..512].iter().all(|&x| x == 0));
        assert!(r.advance_to(2).is_err());
        // The discard (entry 3) overlaps the FUA write (entry 2) of its epoch.
        assert_eq!(r.ambiguous, vec![3]);
        std::fs::remove_file(lp).unwrap();
        std::fs::remove_file(tp).unwrap();
    }
}
