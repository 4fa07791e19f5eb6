//! The workload: one thread per device issues that device's op stream one
//! op at a time, and records in the dm-log-writes log what it knows:
//!
//! * `ct:i:<dev>:<op>` before op `op` is submitted (nothing of it can be on
//!   disk before this mark);
//! * `ct:d:<dev>:<op>` after flush op `op` completed: every op `<= op` is
//!   durable (each completed before the flush was issued);
//! * `ct:u:<dev>:<op>` after FUA write `op` completed: that write is durable.
//!
//! Marks are logged when the message arrives, so a mark's position in the
//! log is never earlier than what it describes.

use std::os::unix::io::AsRawFd;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::dev::{Buf, Dev};
use crate::dm::Dm;
use crate::plan::{plan, Op, PlanCfg};
use crate::stamp::{fill, Stamp, SECTOR};

pub struct WorkCfg {
    pub logdev: String,
    pub devs: Vec<(u32, String)>,
    pub plan: PlanCfg,
    /// Sleep `pause_ms` after every `pause_every` ops (0: never), so
    /// migration and the flusher interleave with the writers.
    pub pause_every: u32,
    pub pause_ms: u64,
    /// fdatasync before every FUA write (marked like any flush): for the
    /// raw self-test, where a plain write and a later FUA write of the same
    /// sector in one flush epoch would be logged in the wrong order.
    pub flush_before_fua: bool,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub ops: u32,
    pub extra: u32,
    pub max_flush_ms: u64,
    pub max_flush_op: u32,
    pub slow_flushes: u32,
    pub writes: u32,
    pub fua: u32,
    pub flushes: u32,
    pub discards: u32,
    pub bytes: u64,
}

pub fn mark(dm: &Dm, logdev: &str, text: &str) -> Result<(), String> {
    dm.message(logdev, &format!("mark {text}")).map(|_| ())
}

/// Fills `buf` with the stamps of op `op` writing `len` sectors at `start`.
pub fn op_data(buf: &mut [u8], seed: u64, dev: u32, op: u32, start: u64) {
    for (i, s) in buf.chunks_mut(SECTOR).enumerate() {
        fill(s, &Stamp { dev, op, sector: start + i as u64, seed });
    }
}

// Linux AIO, for a FUA write without the flush a synchronous O_DSYNC write
// adds (blkdev_write_iter calls generic_write_sync only for completed
// synchronous writes; an async RWF_DSYNC direct write is a REQ_FUA bio).
#[repr(C)]
#[derive(Default)]
struct IoCb {
    data: u64,
    key: u32,
    rw_flags: i32,
    opcode: u16,
    reqprio: i16,
    fildes: u32,
    buf: u64,
    nbytes: u64,
    offset: i64,
    reserved2: u64,
    flags: u32,
    resfd: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

const IOCB_CMD_PWRITE: u16 = 1;
const RWF_DSYNC: i32 = 2;

struct Aio(libc::c_ulong);

impl Aio {
    fn new() -> Result<Aio, String> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the context id into ctx.
        let r = unsafe { libc::syscall(libc::SYS_io_setup, 4, &mut ctx as *mut libc::c_ulong) };
        if r != 0 {
            return Err(format!("io_setup: {}", std::io::Error::last_os_error()));
        }
        Ok(Aio(ctx))
    }

    fn fua_write(&self, fd: i32, buf: &[u8], off: u64) -> Result<(), String> {
        let mut cb = IoCb {
            opcode: IOCB_CMD_PWRITE,
            rw_flags: RWF_DSYNC,
            fildes: fd as u32,
            buf: buf.as_ptr() as u64,
            nbytes: buf.len() as u64,
            offset: off as i64,
            ..Default::default()
        };
        let mut list = [&mut cb as *mut IoCb];
        // SAFETY: one valid iocb whose buffer outlives the I/O (we wait for it below).
        let r = unsafe { libc::syscall(libc::SYS_io_submit, self.0, 1 as libc::c_long, list.as_mut_ptr()) };
        if r != 1 {
            return Err(format!("io_submit: {}", std::io::Error::last_os_error()));
        }
        let mut ev = [IoEvent::default()];
        loop {
            // SAFETY: room for one event; no timeout.
            let r = unsafe {
                libc::syscall(libc::SYS_io_getevents, self.0, 1 as libc::c_long, 1 as libc::c_long, ev.as_mut_ptr(), std::ptr::null_mut::<libc::timespec>())
            };
            if r == 1 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(format!("io_getevents: {e}"));
            }
        }
        if ev[0].res != buf.len() as i64 {
            return Err(format!("FUA write of {} bytes at {off}: result {}", buf.len(), ev[0].res));
        }
        Ok(())
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // SAFETY: destroys the context created in new().
        unsafe { libc::syscall(libc::SYS_io_destroy, self.0) };
    }
}

const BLKDISCARD: libc::c_ulong = 0x1277;

/// Makes the device threads stop together. A thread that has run its
/// planned ops does not just leave: it waits a little for the others and,
/// while some are still busy, goes on with its stream (those extra ops are
/// marked like any other). A thread blocked in a flush that the cache only
/// completes when more segments are written (a liveness bug seen in the
/// module) is then freed by the others' writes instead of hanging the run;
/// the flush latencies in the summary show it.
struct Coord {
    state: Mutex<(usize, bool)>, // (threads arrived, exit)
    cv: Condvar,
    total: usize,
}

impl Coord {
    /// True when every thread has arrived: stop. False: go on helping.
    fn arrive(&self) -> bool {
        let mut g = self.state.lock().unwrap();
        g.0 += 1;
        if g.0 == self.total {
            g.1 = true;
            self.cv.notify_all();
            return true;
        }
        let (mut g, _) = self.cv.wait_timeout_while(g, Duration::from_millis(300), |g| !g.1).unwrap();
        if g.1 {
            return true;
        }
        g.0 -= 1;
        false
    }
}

fn run_dev(dm: &Dm, cfg: &WorkCfg, coord: &Coord, dev: u32, path: &str) -> Result<Stats, String> {
    let d = Dev::open(path, true)?;
    if !d.direct {
        return Err(format!("{path}: O_DIRECT refused"));
    }
    let size = d.size()?;
    if size / 512 != cfg.plan.sectors {
        return Err(format!("{path}: {} sectors, the plan says {}", size / 512, cfg.plan.sectors));
    }
    let fd = d.file.as_raw_fd();
    let aio = Aio::new()?;
    // Planned ops, and room for extra ones (the stream is prefix-stable).
    let mut ops = plan(&cfg.plan, dev);
    let mut buf = Buf::new(512 * 512);
    let mut st = Stats::default();
    let mut n: u32 = 0;
    loop {
        if n >= cfg.plan.ops && coord.arrive() {
            break;
        }
        if n as usize >= ops.len() {
            let more = PlanCfg { ops: ops.len() as u32 * 2, ..cfg.plan };
            ops = plan(&more, dev);
        }
        let op = ops[n as usize];
        n += 1;
        if n > cfg.plan.ops {
            st.extra += 1;
        }
        mark(dm, &cfg.logdev, &format!("ct:i:{dev}:{n}"))?;
        match op {
            Op::Write { start, len } | Op::Fua { start, len } => {
                let b = &mut buf.get_mut()[..len as usize * SECTOR];
                op_data(b, cfg.plan.seed, dev, n, start);
                if matches!(op, Op::Fua { .. }) {
                    if cfg.flush_before_fua && n > 1 {
                        st.flush(&d, n)?;
                        mark(dm, &cfg.logdev, &format!("ct:d:{dev}:{}", n - 1))?;
                    }
                    aio.fua_write(fd, b, start * 512).map_err(|e| format!("{path}: op {n}: {e}"))?;
                    mark(dm, &cfg.logdev, &format!("ct:u:{dev}:{n}"))?;
                    st.fua += 1;
                } else {
                    d.write_all_at(b, start * 512).map_err(|e| format!("op {n}: {e}"))?;
                    st.writes += 1;
                }
                st.bytes += len as u64 * 512;
            }
            Op::Flush => {
                st.flush(&d, n)?;
                mark(dm, &cfg.logdev, &format!("ct:d:{dev}:{n}"))?;
            }
            Op::Discard { start, len } => {
                let range: [u64; 2] = [start * 512, len as u64 * 512];
                // SAFETY: BLKDISCARD reads two u64s.
                let r = unsafe { libc::ioctl(fd, BLKDISCARD, range.as_ptr()) };
                if r != 0 {
                    return Err(format!("{path}: op {n}: BLKDISCARD {start}+{len}: {}", std::io::Error::last_os_error()));
                }
                st.discards += 1;
            }
        }
        if cfg.pause_every > 0 && n.is_multiple_of(cfg.pause_every) {
            std::thread::sleep(Duration::from_millis(cfg.pause_ms));
        }
    }
    st.ops = n;
    Ok(st)
}

impl Stats {
    fn flush(&mut self, d: &Dev, n: u32) -> Result<(), String> {
        let t = Instant::now();
        d.sync().map_err(|e| format!("op {n}: {e}"))?;
        let ms = t.elapsed().as_millis() as u64;
        self.flushes += 1;
        if ms > self.max_flush_ms {
            self.max_flush_ms = ms;
            self.max_flush_op = n;
        }
        if ms >= 2000 {
            self.slow_flushes += 1;
        }
        Ok(())
    }
}

/// The config mark: everything the checker needs to rebuild the streams.
pub fn config_mark(cfg: &WorkCfg) -> String {
    let ids: Vec<String> = cfg.devs.iter().map(|(id, _)| id.to_string()).collect();
    format!(
        "ct:cfg:seed={},ops={},sectors={},devs={},mix={}",
        cfg.plan.seed,
        cfg.plan.ops,
        cfg.plan.sectors,
        ids.join("+"),
        cfg.plan.mix.to_arg()
    )
}

pub fn run(cfg: &WorkCfg) -> Result<(), String> {
    let dm = Dm::open()?;
    mark(&dm, &cfg.logdev, &config_mark(cfg))?;
    let t0 = Instant::now();
    let coord = Coord { state: Mutex::new((0, false)), cv: Condvar::new(), total: cfg.devs.len() };
    let results: Vec<Result<Stats, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = cfg
            .devs
            .iter()
            .map(|(id, path)| {
                let (dm, coord) = (&dm, &coord);
                s.spawn(move || run_dev(dm, cfg, coord, *id, path))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("workload thread panicked".into()))).collect()
    });
    mark(&dm, &cfg.logdev, "ct:end")?;
    let st = dm.status(&cfg.logdev)?;
    println!("log-writes status: {st}");
    if st.contains("logging_disabled") {
        return Err(format!("{}: logging disabled (log device full?)", cfg.logdev));
    }
    let mut err = None;
    for ((id, path), r) in cfg.devs.iter().zip(results) {
        match r {
            Ok(st) => println!(
                "workload dev {id} ({path}): {} ops ({} beyond the plan): {} writes, {} FUA writes, {} flushes, {} discards, \
                 {} KiB written; slowest flush {} ms (op {}), {} flushes took 2 s or more",
                st.ops,
                st.extra,
                st.writes,
                st.fua,
                st.flushes,
                st.discards,
                st.bytes / 1024,
                st.max_flush_ms,
                st.max_flush_op,
                st.slow_flushes
            ),
            Err(e) => {
                println!("workload dev {id} ({path}): FAILED: {e}");
                err.get_or_insert(e);
            }
        }
    }
    println!("workload: {:.1}s", t0.elapsed().as_secs_f64());
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
