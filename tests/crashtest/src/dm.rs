//! Device-mapper through its ioctls on /dev/mapper/control (uapi
//! include/uapi/linux/dm-ioctl.h, interface version 4): create, load,
//! resume, remove, message, status. Much faster than a dmsetup process per
//! step under TCG, and with the errno at hand.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;

const HDR: usize = 312; // sizeof(struct dm_ioctl)
const SPEC: usize = 40; // sizeof(struct dm_target_spec)
const NAME_LEN: usize = 128;

const CMD_DEV_CREATE: u32 = 3;
const CMD_DEV_REMOVE: u32 = 4;
const CMD_DEV_SUSPEND: u32 = 6;
const CMD_DEV_STATUS: u32 = 7;
const CMD_TABLE_LOAD: u32 = 9;
const CMD_TABLE_STATUS: u32 = 12;
const CMD_TARGET_MSG: u32 = 14;

const FLAG_BUFFER_FULL: u32 = 1 << 8;
const FLAG_DATA_OUT: u32 = 1 << 16;

fn ioc(nr: u32) -> libc::c_ulong {
    ((3u64 << 30) | ((HDR as u64) << 16) | (0xfd << 8) | nr as u64) as libc::c_ulong
}

#[derive(Clone, Debug)]
pub struct Target {
    pub start: u64,
    pub len: u64,
    pub ttype: String,
    pub params: String,
}

impl Target {
    pub fn new(len: u64, ttype: &str, params: String) -> Self {
        Target { start: 0, len, ttype: ttype.to_string(), params }
    }
}

/// A device number as the kernel hands it out (huge_encode_dev).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevNo(pub u64);

impl DevNo {
    pub fn major(self) -> u32 {
        ((self.0 >> 8) & 0xfff) as u32
    }
    pub fn minor(self) -> u32 {
        ((self.0 & 0xff) | ((self.0 >> 12) & 0xfff00)) as u32
    }
    /// "major:minor", as tables accept it.
    pub fn arg(self) -> String {
        format!("{}:{}", self.major(), self.minor())
    }
}

pub struct Dm {
    ctl: File,
}

struct Reply {
    buf: Vec<u8>,
    flags: u32,
    dev: u64,
    data_start: usize,
}

fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn get32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

impl Dm {
    pub fn open() -> Result<Dm, String> {
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/mapper/control")
            .map_err(|e| format!("cannot open /dev/mapper/control: {e}"))?;
        Ok(Dm { ctl })
    }

    fn call(&self, cmd: u32, name: &str, flags: u32, target_count: u32, payload: &[u8], out: usize) -> io::Result<Reply> {
        if name.len() >= NAME_LEN {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        let mut cap = out;
        loop {
            let total = (HDR + payload.len() + cap).div_ceil(8) * 8;
            // u64 backing store: the kernel wants the struct 8-byte aligned.
            let mut store = vec![0u64; total / 8];
            // SAFETY: a u64 vector viewed as bytes, same length in bytes.
            let buf = unsafe { std::slice::from_raw_parts_mut(store.as_mut_ptr() as *mut u8, total) };
            put32(buf, 0, 4);
            put32(buf, 4, 0);
            put32(buf, 8, 0);
            put32(buf, 12, total as u32);
            put32(buf, 16, HDR as u32);
            put32(buf, 20, target_count);
            put32(buf, 28, flags);
            buf[48..48 + name.len()].copy_from_slice(name.as_bytes());
            buf[HDR..HDR + payload.len()].copy_from_slice(payload);
            // SAFETY: DM ioctls read and write at most data_size bytes of buf.
            let r = unsafe { libc::ioctl(self.ctl.as_raw_fd(), ioc(cmd), buf.as_mut_ptr()) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            let rflags = get32(buf, 28);
            if rflags & FLAG_BUFFER_FULL != 0 && cap < (1 << 22) {
                cap = cap.max(4096) * 4;
                continue;
            }
            let dev = u64::from_le_bytes(buf[40..48].try_into().unwrap());
            let data_start = get32(buf, 16) as usize;
            return Ok(Reply { buf: buf.to_vec(), flags: rflags, dev, data_start });
        }
    }

    fn load(&self, name: &str, table: &[Target]) -> io::Result<()> {
        let mut p = Vec::new();
        for t in table {
            let mut spec = vec![0u8; SPEC];
            spec[0..8].copy_from_slice(&t.start.to_le_bytes());
            spec[8..16].copy_from_slice(&t.len.to_le_bytes());
            let tt = t.ttype.as_bytes();
            if tt.len() >= 16 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            spec[24..24 + tt.len()].copy_from_slice(tt);
            let mut params = t.params.as_bytes().to_vec();
            params.push(0);
            while !(SPEC + params.len()).is_multiple_of(8) {
                params.push(0);
            }
            put32(&mut spec, 20, (SPEC + params.len()) as u32);
            p.extend_from_slice(&spec);
            p.extend_from_slice(&params);
        }
        self.call(CMD_TABLE_LOAD, name, 0, table.len() as u32, &p, 0).map(|_| ())
    }

    /// Creates, loads and resumes a device; returns its number.
    pub fn create(&self, name: &str, table: &[Target]) -> Result<DevNo, String> {
        let desc = || {
            table.iter().map(|t| format!("{} {} {} {}", t.start, t.len, t.ttype, t.params)).collect::<Vec<_>>().join("; ")
        };
        self.call(CMD_DEV_CREATE, name, 0, 0, &[], 0)
            .map_err(|e| format!("create {name}: {e}"))?;
        let r = self
            .load(name, table)
            .map_err(|e| format!("load {name} ({}): {e}", desc()))
            .and_then(|_| {
                self.call(CMD_DEV_SUSPEND, name, 0, 0, &[], 0)
                    .map_err(|e| format!("resume {name} ({}): {e}", desc()))
            });
        match r {
            Ok(rep) => Ok(DevNo(rep.dev)),
            Err(m) => {
                let _ = self.remove(name);
                Err(m)
            }
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.call(CMD_DEV_STATUS, name, 0, 0, &[], 0).is_ok()
    }

    /// Removes a device, retrying a little while it is busy.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        let mut tries = 0;
        loop {
            match self.call(CMD_DEV_REMOVE, name, 0, 0, &[], 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(format!("remove {name}: {e}")),
            }
        }
    }

    /// Sends a target message (sector 0); returns the target's reply, if any.
    pub fn message(&self, name: &str, msg: &str) -> Result<Option<String>, String> {
        let mut p = 0u64.to_le_bytes().to_vec();
        p.extend_from_slice(msg.as_bytes());
        p.push(0);
        let r = self
            .call(CMD_TARGET_MSG, name, 0, 0, &p, 4096)
            .map_err(|e| format!("message {name} '{msg}': {e}"))?;
        if r.flags & FLAG_DATA_OUT == 0 {
            return Ok(None);
        }
        Ok(Some(cstr_at(&r.buf, r.data_start)))
    }

    /// The status line of the first target.
    pub fn status(&self, name: &str) -> Result<String, String> {
        let r = self
            .call(CMD_TABLE_STATUS, name, 0, 0, &[], 16384)
            .map_err(|e| format!("status {name}: {e}"))?;
        if get32(&r.buf, 20) == 0 {
            return Ok(String::new());
        }
        Ok(cstr_at(&r.buf, r.data_start + SPEC))
    }
}

fn cstr_at(b: &[u8], o: usize) -> String {
    let s = &b[o.min(b.len())..];
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

/// Makes a block device node `path` for `dev` (no udev in the guest).
pub fn mknod(path: &str, dev: DevNo) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let c = CString::new(path).map_err(|_| format!("bad path {path}"))?;
    // SAFETY: c is a valid NUL-terminated path.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(dev.major(), dev.minor())) };
    if r != 0 {
        return Err(format!("mknod {path}: {}", io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_and_devno() {
        assert_eq!(ioc(CMD_TARGET_MSG), 0xC138_FD0E);
        assert_eq!(ioc(CMD_DEV_CREATE), 0xC138_FD03);
        let d = DevNo((253 << 8) | 5);
        assert_eq!((d.major(), d.minor()), (253, 5));
        let d = DevNo((253 << 8) | 0x34 | (0x12 << 20));
        assert_eq!(d.minor(), 0x1234);
        assert_eq!(d.arg(), "253:4660");
    }
}
