//! `write` and `fill`.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use crate::dev::{note, out, AlignedBuf, Dev};
use crate::stamp::{stamp_range, SECTOR_SIZE};
use crate::stream::{Region, Stream};

/// Options of `write` that are not part of the stream.
#[derive(Clone, Debug)]
pub struct WriteOpts {
    /// fdatasync after every K ops (and after the last one), printing
    /// `flushed <op>` each time.
    pub fsync_every: Option<u64>,
    /// Open with O_DSYNC.
    pub fua: bool,
    /// Number of submitting threads.
    pub jobs: u32,
    /// Progress lines on stderr about once a second.
    pub progress: bool,
}

struct Shared<'a> {
    dev: &'a Dev,
    stream: &'a Stream,
    opts: &'a WriteOpts,
    n: u64,
    window: u64,
    jobs: u64,
    barrier: Barrier,
    failed: AtomicBool,
    /// Only written by worker 0 between the two barriers of a window.
    stop: AtomicBool,
    error: Mutex<Option<String>>,
    ops_done: AtomicU64,
    bytes_done: AtomicU64,
    started: Instant,
}

impl Shared<'_> {
    fn fail(&self, msg: String) {
        if let Ok(mut g) = self.error.lock() {
            if g.is_none() {
                *g = Some(msg);
            }
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    fn progress(&self, last: &mut Instant) {
        if self.opts.progress && last.elapsed() >= Duration::from_secs(1) {
            *last = Instant::now();
            let b = self.bytes_done.load(Ordering::Relaxed);
            note(&format!(
                "progress: {}/{} ops, {} MiB, {:.1} s",
                self.ops_done.load(Ordering::Relaxed),
                self.n,
                b >> 20,
                self.started.elapsed().as_secs_f64()
            ));
        }
    }

    fn write_op(&self, buf: &mut AlignedBuf, i: u64) -> Result<(), String> {
        let (st, ln) = self.stream.op(i);
        let bytes = (ln as usize) * SECTOR_SIZE;
        let b = &mut buf.get_mut()[..bytes];
        stamp_range(b, self.stream.seed, st, self.stream.gen(i));
        self.dev.file.write_all_at(b, st * 512).map_err(|e| {
            self.dev
                .io_error(&format!("write of op {i} (sector {st}, {ln} sectors)"), &e)
        })?;
        self.ops_done.fetch_add(1, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Worker `j` writes ops i of each window with (i - 1) % jobs == j.
    /// All workers meet at a barrier after every window; worker 0 then
    /// flushes (with --fsync-every) and decides whether to stop.
    fn worker(&self, j: u64) {
        let mut buf = match AlignedBuf::new(self.stream.max_io_bytes() as usize) {
            Ok(b) => Some(b),
            Err(e) => {
                self.fail(e);
                None
            }
        };
        let mut last = Instant::now();
        let mut w_start = 1u64;
        while w_start <= self.n {
            let w_end = (w_start + self.window - 1).min(self.n);
            if let Some(buf) = buf.as_mut() {
                // First op of this window that belongs to worker j.
                let first = w_start + (j + self.jobs - (w_start - 1) % self.jobs) % self.jobs;
                let mut i = first;
                while i <= w_end && !self.failed.load(Ordering::Relaxed) {
                    if let Err(e) = self.write_op(buf, i) {
                        self.fail(e);
                        break;
                    }
                    if j == 0 {
                        self.progress(&mut last);
                    }
                    i += self.jobs;
                }
            }
            self.barrier.wait();
            if j == 0 {
                if self.opts.fsync_every.is_some() && !self.failed.load(Ordering::SeqCst) {
                    let r = self
                        .dev
                        .file
                        .sync_data()
                        .map_err(|e| {
                            self.dev
                                .io_error(&format!("fdatasync after op {w_end}"), &e)
                        })
                        .and_then(|_| out(&format!("flushed {w_end}")));
                    if let Err(e) = r {
                        self.fail(e);
                    }
                }
                self.stop
                    .store(self.failed.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            self.barrier.wait();
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            w_start = w_end + 1;
        }
    }
}

/// Write the op stream to `path`; prints `flushed <op>` lines (with
/// fsync_every) and `done <N>`.
pub fn run_write(path: &Path, stream: &Stream, opts: &WriteOpts) -> Result<(), String> {
    if opts.jobs == 0 {
        return Err("--jobs must be at least 1".to_string());
    }
    if opts.fsync_every == Some(0) {
        return Err("--fsync-every must be at least 1".to_string());
    }
    let mut dev = Dev::open(path, true, opts.fua)?;
    dev.ensure_size(stream.region.end_bytes(), true)?;
    let n = stream.n();
    let jobs = u64::from(opts.jobs);
    let shared = Shared {
        dev: &dev,
        stream,
        opts,
        n,
        window: opts.fsync_every.unwrap_or(n).max(1),
        jobs,
        barrier: Barrier::new(jobs as usize),
        failed: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
        ops_done: AtomicU64::new(0),
        bytes_done: AtomicU64::new(0),
        started: Instant::now(),
    };
    std::thread::scope(|sc| {
        let sh = &shared;
        for j in 1..jobs {
            sc.spawn(move || sh.worker(j));
        }
        sh.worker(0);
    });
    let err = match shared.error.into_inner() {
        Ok(e) => e,
        Err(p) => p.into_inner(),
    };
    if let Some(e) = err {
        return Err(e);
    }
    if shared.failed.load(Ordering::SeqCst) {
        return Err("write failed".to_string());
    }
    out(&format!("done {n}"))
}

/// Fill every sector of `region` with generation `gen`, sequentially in
/// 1 MiB writes, then fdatasync.
pub fn run_fill(path: &Path, region: Region, seed: u32, gen: u64) -> Result<(), String> {
    if gen == 0 {
        return Err("--gen 0 is reserved; use a generation >= 1".to_string());
    }
    const CHUNK: u64 = 2048; // sectors = 1 MiB
    let mut dev = Dev::open(path, true, false)?;
    dev.ensure_size(region.end_bytes(), true)?;
    let mut buf = AlignedBuf::new((CHUNK as usize) * SECTOR_SIZE)?;
    let mut s = region.start;
    while s < region.end() {
        let n = CHUNK.min(region.end() - s);
        let b = &mut buf.get_mut()[..(n as usize) * SECTOR_SIZE];
        stamp_range(b, seed, s, gen);
        dev.file
            .write_all_at(b, s * 512)
            .map_err(|e| dev.io_error(&format!("write at sector {s} ({n} sectors)"), &e))?;
        s += n;
    }
    dev.file
        .sync_data()
        .map_err(|e| dev.io_error("fdatasync", &e))?;
    out(&format!("filled {} sectors with gen {gen}", region.len))
}
