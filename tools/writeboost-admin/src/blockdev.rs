//! Block devices: `major:minor` numbers, and checking a path given on the
//! command line before it is handed to the kernel.

use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::sysfs::Sys;

/// A device number, shown as `major:minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNo {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevNo {
    /// From a `st_rdev`.
    pub fn from_rdev(rdev: u64) -> Self {
        DevNo { major: nix::sys::stat::major(rdev) as u32, minor: nix::sys::stat::minor(rdev) as u32 }
    }
}

impl fmt::Display for DevNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DevNo {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let (a, b) = s.split_once(':').ok_or_else(|| format!("'{}' is not a major:minor device number", s))?;
        match (a.parse(), b.parse()) {
            (Ok(major), Ok(minor)) => Ok(DevNo { major, minor }),
            _ => Err(format!("'{}' is not a major:minor device number", s)),
        }
    }
}

impl Serialize for DevNo {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A block device named on the command line, checked.
#[derive(Clone, Debug)]
pub struct BlockDev {
    /// The path as given.
    pub path: PathBuf,
    /// Its device number.
    pub devno: DevNo,
    /// Its kernel name (`vda`, `dm-3`).
    pub kname: String,
    /// Its size in 512-byte sectors.
    pub sectors: u64,
}

/// Checks that `path` is an existing block device and reads its number and
/// size. `role` names it in messages ("backing device", "cache device").
pub fn block_device(sys: &Sys, path: &Path, role: &str) -> Result<BlockDev> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid(format!("the {} path is empty", role)));
    }
    let md = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(format!("{} {} does not exist", role, path.display()))
        } else {
            Error::invalid(format!("{} {}: {}", role, path.display(), e))
        }
    })?;
    if !md.file_type().is_block_device() {
        return Err(Error::invalid(format!("{} {} is not a block device", role, path.display())));
    }
    let devno = DevNo::from_rdev(md.rdev());
    let dir = sys.block_dir(devno);
    let sectors = sys.read_u64(&dir.join("size")).map_err(|_| {
        Error::invalid(format!("{} {} ({}): the kernel does not know this device", role, path.display(), devno))
    })?;
    let kname = std::fs::canonicalize(&dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| devno.to_string());
    Ok(BlockDev { path: path.to_path_buf(), devno, kname, sectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devno_round_trip() {
        let d: DevNo = "253:17".parse().unwrap();
        assert_eq!(d, DevNo { major: 253, minor: 17 });
        assert_eq!(d.to_string(), "253:17");
        assert_eq!(" 8:0\n".parse::<DevNo>().unwrap(), DevNo { major: 8, minor: 0 });
        assert!("8".parse::<DevNo>().is_err());
        assert!("a:b".parse::<DevNo>().is_err());
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"253:17\"");
    }

    #[test]
    fn paths_are_checked() {
        let sys = Sys::new("/nonexistent-sys");
        let e = block_device(&sys, Path::new("/dev/does-not-exist"), "backing device").unwrap_err();
        assert_eq!(e.to_string(), "backing device /dev/does-not-exist does not exist");
        assert_eq!(e.exit_code(), 2);
        let e = block_device(&sys, Path::new("/"), "cache device").unwrap_err();
        assert_eq!(e.to_string(), "cache device / is not a block device");
        let e = block_device(&sys, Path::new(""), "cache device").unwrap_err();
        assert_eq!(e.to_string(), "the cache device path is empty");
    }
}
