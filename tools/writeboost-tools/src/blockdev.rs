//! Exclusive sector I/O on a block device or an image file, for
//! `writeboost-recover`, and the backing identity of a block device as the
//! kernel module computes it.
//!
//! A block device is opened with `O_EXCL` (the kernel refuses it while it is
//! mounted, held by a device-mapper table or a live cache, or opened
//! exclusively by another program) and `O_DIRECT`, so that reads see what
//! is on the disk, not a stale page cache, and writes carry exactly the
//! sectors asked for (no read-modify-write of a 4 KiB page around a 512-byte
//! sector). An image file is opened plainly and locked with `flock`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wbformat::format::{backing_identity, SECTOR_SIZE};

/// Alignment of the buffers handed to `O_DIRECT` I/O.
pub const ALIGN: usize = 4096;

/// A zeroed buffer of `len` bytes whose start is aligned to [`ALIGN`].
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes.
    pub fn new(len: usize) -> Self {
        let raw = vec![0u8; len + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { raw, start, len }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// An open disk: a block device or an image file.
pub struct Disk {
    file: File,
    path: PathBuf,
    sectors: u64,
    /// `st_rdev` of a block device.
    rdev: Option<u64>,
    /// `(st_dev, st_ino)` of an image file.
    inode: (u64, u64),
    direct: bool,
    writable: bool,
}

/// Why a disk could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Someone else holds it.
    #[error("{path}: is in use (mounted, held by a device-mapper table or a live cache, or opened exclusively by another program)")]
    Busy {
        /// The path.
        path: String,
    },
    /// Not a block device or a regular file.
    #[error("{path}: is neither a block device nor an image file")]
    NotADisk {
        /// The path.
        path: String,
    },
    /// Another error.
    #[error("{path}: cannot open: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn is_aligned(buf: &[u8]) -> bool {
    (buf.as_ptr() as usize).is_multiple_of(SECTOR_SIZE) && buf.len().is_multiple_of(SECTOR_SIZE)
}

impl Disk {
    /// Opens `path` exclusively, for writing too when `write`.
    pub fn open(path: &Path, write: bool) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let io = |source: std::io::Error| OpenError::Io { path: shown.clone(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        let ft = meta.file_type();
        let block = ft.is_block_device();
        if !block && !ft.is_file() {
            return Err(OpenError::NotADisk { path: shown });
        }
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(write);
            let mut flags = 0;
            if block {
                flags |= libc::O_EXCL;
                if direct {
                    flags |= libc::O_DIRECT;
                }
            }
            o.custom_flags(flags);
            o.open(path)
        };
        let (mut file, direct) = match open(block) {
            Ok(f) => (f, block),
            // A device that refuses O_DIRECT is used through the page cache.
            Err(e) if block && e.raw_os_error() == Some(libc::EINVAL) => (open(false).map_err(io)?, false),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Err(OpenError::Busy { path: shown }),
            Err(e) => return Err(io(e)),
        };
        if !block {
            let locked = if write { file.try_lock() } else { file.try_lock_shared() };
            if locked.is_err() {
                return Err(OpenError::Busy { path: shown });
            }
        }
        let bytes = file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            sectors: bytes / SECTOR_SIZE as u64,
            rdev: block.then_some(meta.rdev()),
            inode: (meta.dev(), meta.ino()),
            direct,
            writable: write,
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

    /// The device number of a block device.
    pub fn rdev(&self) -> Option<u64> {
        self.rdev
    }

    /// Whether `path` names this disk (the same block device, or the same
    /// file), without opening it; a loop device counts as the file or
    /// device it is set up over (it does not claim it, so opening one
    /// exclusively does not keep the other out), either way round.
    pub fn is_at(&self, path: &Path) -> bool {
        let mine = stack_keys(self.rdev.map_or(DiskKey::File(self.inode.0, self.inode.1), DiskKey::Block));
        match std::fs::metadata(path) {
            Ok(m) => {
                let key = if m.file_type().is_block_device() { DiskKey::Block(m.rdev()) } else { DiskKey::File(m.dev(), m.ino()) };
                stack_keys(key).iter().any(|k| mine.contains(k))
            }
            Err(_) => false,
        }
    }

    fn check_range(&self, sector: u64, len: usize) -> std::io::Result<()> {
        let n = (len / SECTOR_SIZE) as u64;
        if !len.is_multiple_of(SECTOR_SIZE) || sector.checked_add(n).is_none_or(|end| end > self.sectors) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("sectors {sector}..{} are not within the disk ({} sectors)", sector.saturating_add(n), self.sectors),
            ));
        }
        Ok(())
    }

    /// Fills `buf` (whole sectors) from `sector` on.
    pub fn read_at(&self, sector: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.check_range(sector, buf.len())?;
        let off = sector * SECTOR_SIZE as u64;
        if !self.direct || is_aligned(buf) {
            return self.file.read_exact_at(buf, off);
        }
        let mut b = AlignedBuf::new(buf.len());
        self.file.read_exact_at(b.as_mut_slice(), off)?;
        buf.copy_from_slice(b.as_slice());
        Ok(())
    }

    /// Writes `buf` (whole sectors) at `sector`.
    pub fn write_at(&self, sector: u64, buf: &[u8]) -> std::io::Result<()> {
        if !self.writable {
            return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "opened read-only"));
        }
        self.check_range(sector, buf.len())?;
        let off = sector * SECTOR_SIZE as u64;
        if !self.direct || is_aligned(buf) {
            return self.file.write_all_at(buf, off);
        }
        let mut b = AlignedBuf::new(buf.len());
        b.as_mut_slice().copy_from_slice(buf);
        self.file.write_all_at(b.as_slice(), off)
    }

    /// Makes everything written durable (`fdatasync`: for a block device
    /// the kernel also flushes the disk's volatile cache).
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// The backing identity of this disk as the kernel module would record
    /// it (see [`identity_from_sysfs`]).
    pub fn identity(&self) -> Identity {
        match self.rdev {
            None => Identity::Unknown("an image file, not a block device: it has no identity the kernel could have recorded".into()),
            Some(rdev) => identity_from_sysfs(Path::new("/sys"), libc::major(rdev), libc::minor(rdev)),
        }
    }
}

/// What a path is, for telling whether two paths are one disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DiskKey {
    /// A block device, by `st_rdev`.
    Block(u64),
    /// A file, by `(st_dev, st_ino)`.
    File(u64, u64),
}

/// `key`, and the keys of what it stands on through loop devices
/// (`/sys/dev/block/M:m/loop/backing_file`, a few levels deep).
fn stack_keys(key: DiskKey) -> Vec<DiskKey> {
    let mut v = vec![key];
    let mut cur = key;
    for _ in 0..8 {
        let DiskKey::Block(r) = cur else { break };
        let f = format!("/sys/dev/block/{}:{}/loop/backing_file", libc::major(r), libc::minor(r));
        let Some(b) = read_trimmed(Path::new(&f)) else { break };
        let Ok(m) = std::fs::metadata(b.trim_end_matches(" (deleted)")) else { break };
        cur = if m.file_type().is_block_device() { DiskKey::Block(m.rdev()) } else { DiskKey::File(m.dev(), m.ino()) };
        if v.contains(&cur) {
            break;
        }
        v.push(cur);
    }
    v
}

/// A backing disk's identity (`Documentation/on-disk-format.md`, "Backing
/// identity").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The name the kernel hashes, and its hash.
    Known {
        /// For example `dm-name:back1` or `disk:vda:0`.
        name: String,
        /// `format::backing_identity(name)`.
        value: u64,
    },
    /// It cannot be computed from userland, and why.
    Unknown(String),
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

fn known(name: String) -> Identity {
    let value = backing_identity(name.as_bytes());
    Identity::Known { name, value }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of block device `major:minor`, computed from the sysfs tree
/// at `sysfs` the way the kernel module's `wb_bdev_identity` computes it
/// (Linux 6.12):
///
/// 1. a device-mapper device: `dm-uuid:<uuid>` if it has a uuid, else
///    `dm-name:<name>`;
/// 2. a disk whose driver reports a unique id: for a SCSI disk (`sd`) the
///    first logical-unit designator of type NAA, else EUI-64, else T10 of
///    VPD page 0x83 (8, 12 or 16 bytes, a 16-byte one preferred), for an
///    NVMe namespace its NGUID, else its EUI-64:
///    `uid:<type>:<hex>:<partition number>`;
/// 3. otherwise `disk:<disk name>:<partition number>`.
///
/// A SCSI disk whose VPD page cannot be read gives [`Identity::Unknown`].
pub fn identity_from_sysfs(sysfs: &Path, major: u32, minor: u32) -> Identity {
    let dir = sysfs.join(format!("dev/block/{major}:{minor}"));
    let Ok(dir) = std::fs::canonicalize(&dir) else {
        return Identity::Unknown(format!("{} does not exist", dir.display()));
    };
    if dir.join("dm").is_dir() {
        if let Some(uuid) = read_trimmed(&dir.join("dm/uuid")).filter(|u| !u.is_empty()) {
            return known(format!("dm-uuid:{uuid}"));
        }
        return match read_trimmed(&dir.join("dm/name")) {
            Some(name) => known(format!("dm-name:{name}")),
            None => Identity::Unknown(format!("{}: cannot read the device-mapper name", dir.display())),
        };
    }
    let (disk, partno) = match read_trimmed(&dir.join("partition")).and_then(|p| p.parse::<u32>().ok()) {
        Some(p) => match dir.parent() {
            Some(parent) => (parent.to_path_buf(), p),
            None => return Identity::Unknown(format!("{}: a partition without its disk", dir.display())),
        },
        None => (dir.clone(), 0),
    };
    let Some(name) = disk.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Identity::Unknown(format!("{}: no disk name", disk.display()));
    };
    // SCSI disks: VPD page 0x83, as sd_get_unique_id reads it.
    let driver = std::fs::read_link(disk.join("device/driver")).ok();
    if driver.as_deref().and_then(|d| d.file_name()).is_some_and(|n| n == "sd") {
        let Ok(vpd) = std::fs::read(disk.join("device/vpd_pg83")) else {
            // The kernel finds no page either: it falls back to the name.
            return if disk.join("device/vpd_pg83").exists() {
                Identity::Unknown(format!("{name}: cannot read its VPD page 0x83"))
            } else {
                known(format!("disk:{name}:{partno}"))
            };
        };
        // blk_unique_id: T10 = 1, EUI64 = 2, NAA = 3; tried NAA first.
        for ty in [3u8, 2, 1] {
            if let Some(id) = scsi_designator(&vpd, ty) {
                return known(format!("uid:{ty}:{}:{partno}", hex(&id)));
            }
        }
        return known(format!("disk:{name}:{partno}"));
    }
    // NVMe namespaces (the head disk nvmeXnY): NGUID, else EUI-64, both as
    // type EUI64 (2). sysfs shows them only when they are not all zero.
    if name.starts_with("nvme") {
        if let Some(g) = read_trimmed(&disk.join("nguid")) {
            let h: String = g.chars().filter(|c| c.is_ascii_hexdigit()).collect();
            if h.len() == 32 && h.chars().any(|c| c != '0') {
                return known(format!("uid:2:{}:{partno}", h.to_ascii_lowercase()));
            }
        }
        if let Some(e) = read_trimmed(&disk.join("eui")) {
            let h: String = e.chars().filter(|c| c.is_ascii_hexdigit()).collect();
            if h.len() == 16 && h.chars().any(|c| c != '0') {
                return known(format!("uid:2:{}:{partno}", h.to_ascii_lowercase()));
            }
        }
        return known(format!("disk:{name}:{partno}"));
    }
    known(format!("disk:{name}:{partno}"))
}

/// The block device whose identity (as [`identity_from_sysfs`] computes
/// it) is `want`, among those under `sysfs`/class/block: its device node
/// (`/dev/mapper/<name>` for a device-mapper device) and the name its
/// identity hashes. For suggesting the disk a registered device id had.
pub fn find_by_identity(sysfs: &Path, want: u64) -> Option<(PathBuf, String)> {
    let mut entries: Vec<_> = std::fs::read_dir(sysfs.join("class/block")).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(dev) = read_trimmed(&e.path().join("dev")) else { continue };
        let Some((ma, mi)) = dev.split_once(':') else { continue };
        let (Ok(ma), Ok(mi)) = (ma.parse::<u32>(), mi.parse::<u32>()) else { continue };
        if let Identity::Known { name, value } = identity_from_sysfs(sysfs, ma, mi) {
            if value == want {
                let node = match name.strip_prefix("dm-name:") {
                    Some(n) => PathBuf::from("/dev/mapper").join(n),
                    None => PathBuf::from("/dev").join(e.file_name()),
                };
                return Some((node, name));
            }
        }
    }
    None
}

/// The designator of type `ty` with logical-unit association in VPD page
/// 0x83 `vpd` (8, 12 or 16 bytes; the first 16-byte one, else the last
/// shorter one), as `sd_get_unique_id` picks it.
fn scsi_designator(vpd: &[u8], ty: u8) -> Option<Vec<u8>> {
    let mut found = None;
    let mut d = 4usize;
    while d + 4 <= vpd.len() {
        let assoc = (vpd[d + 1] >> 4) & 0x3;
        let dtype = vpd[d + 1] & 0xf;
        let len = vpd[d + 3] as usize;
        if assoc == 0 && dtype == ty && matches!(len, 8 | 12 | 16) {
            if let Some(id) = vpd.get(d + 4..d + 4 + len) {
                found = Some(id.to_vec());
                if len == 16 {
                    break;
                }
            }
        }
        d += len + 4;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> tempfile::TempDir {
        tempfile::TempDir::new().unwrap()
    }

    fn link(root: &Path, devno: &str, target: &str) {
        let t = root.join(target);
        fs::create_dir_all(&t).unwrap();
        fs::create_dir_all(root.join("dev/block")).unwrap();
        std::os::unix::fs::symlink(&t, root.join("dev/block").join(devno)).unwrap();
    }

    #[test]
    fn dm_uuid_then_name() {
        let t = tree();
        let r = t.path();
        link(r, "252:0", "devices/virtual/block/dm-0");
        fs::create_dir_all(r.join("devices/virtual/block/dm-0/dm")).unwrap();
        fs::write(r.join("devices/virtual/block/dm-0/dm/name"), "back1\n").unwrap();
        fs::write(r.join("devices/virtual/block/dm-0/dm/uuid"), "\n").unwrap();
        let want = backing_identity(b"dm-name:back1");
        assert_eq!(identity_from_sysfs(r, 252, 0), Identity::Known { name: "dm-name:back1".into(), value: want });
        fs::write(r.join("devices/virtual/block/dm-0/dm/uuid"), "LVM-abc\n").unwrap();
        assert_eq!(identity_from_sysfs(r, 252, 0), known("dm-uuid:LVM-abc".into()));
    }

    #[test]
    fn plain_disk_and_partition() {
        let t = tree();
        let r = t.path();
        link(r, "254:0", "devices/pci0000:00/virtio1/block/vda");
        link(r, "254:1", "devices/pci0000:00/virtio1/block/vda/vda1");
        fs::write(r.join("devices/pci0000:00/virtio1/block/vda/vda1/partition"), "1\n").unwrap();
        assert_eq!(identity_from_sysfs(r, 254, 0), known("disk:vda:0".into()));
        assert_eq!(identity_from_sysfs(r, 254, 1), known("disk:vda:1".into()));
        assert!(matches!(identity_from_sysfs(r, 9, 9), Identity::Unknown(_)));
        fs::create_dir_all(r.join("class/block")).unwrap();
        for (n, d, t) in [("vda", "254:0", "devices/pci0000:00/virtio1/block/vda"), ("vda1", "254:1", "devices/pci0000:00/virtio1/block/vda/vda1")] {
            fs::write(r.join(t).join("dev"), format!("{d}\n")).unwrap();
            std::os::unix::fs::symlink(r.join(t), r.join("class/block").join(n)).unwrap();
        }
        let want = backing_identity(b"disk:vda:1");
        assert_eq!(find_by_identity(r, want), Some((PathBuf::from("/dev/vda1"), "disk:vda:1".into())));
        assert_eq!(find_by_identity(r, 12345), None);
    }

    #[test]
    fn scsi_vpd_and_nvme() {
        let t = tree();
        let r = t.path();
        link(r, "8:0", "devices/host0/target0/0:0:0:0/block/sda");
        let dev = r.join("devices/host0/target0/0:0:0:0");
        fs::create_dir_all(r.join("drivers/sd")).unwrap();
        std::os::unix::fs::symlink(r.join("drivers/sd"), dev.join("driver")).unwrap();
        std::os::unix::fs::symlink(&dev, dev.join("block/sda/device")).unwrap();
        // No VPD page: the name.
        assert_eq!(identity_from_sysfs(r, 8, 0), known("disk:sda:0".into()));
        // A T10 designator (type 1, 8 bytes) and an NAA one (type 3, 16 bytes).
        let mut vpd = vec![0, 0x83, 0, 0];
        vpd.extend([0x02, 0x01, 0, 8]);
        vpd.extend([b'A'; 8]);
        vpd.extend([0x01, 0x03, 0, 16]);
        vpd.extend(1u8..=16);
        fs::write(dev.join("vpd_pg83"), &vpd).unwrap();
        assert_eq!(identity_from_sysfs(r, 8, 0), known("uid:3:0102030405060708090a0b0c0d0e0f10:0".into()));
        link(r, "259:0", "devices/nvme/nvme0/nvme0n1");
        let ns = r.join("devices/nvme/nvme0/nvme0n1");
        assert_eq!(identity_from_sysfs(r, 259, 0), known("disk:nvme0n1:0".into()));
        fs::write(ns.join("eui"), "00 11 22 33 44 55 66 77\n").unwrap();
        assert_eq!(identity_from_sysfs(r, 259, 0), known("uid:2:0011223344556677:0".into()));
        fs::write(ns.join("nguid"), "01234567-89ab-cdef-0123-456789abcdef\n").unwrap();
        assert_eq!(identity_from_sysfs(r, 259, 0), known("uid:2:0123456789abcdef0123456789abcdef:0".into()));
    }
}
