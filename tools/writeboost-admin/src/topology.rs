//! What exists right now: the module, the manager, the writeboost devices
//! (from device-mapper, so devices without a sysfs directory are seen too)
//! and the resumed caches (from sysfs).

use serde::Serialize;

use crate::blockdev::DevNo;
use crate::dm::{Dm, DmInfo};
use crate::error::{Error, Result};
use crate::status::{is_22_line, Device22Status, Device22Table, DeviceStatus, DeviceTable};
use crate::sysfs::{CacheNodes, DeviceNodes, Sys};

/// A writeboost device.
#[derive(Clone, Debug, Serialize)]
pub struct WbDevice {
    /// Its device-mapper name.
    pub name: String,
    /// Its table.
    pub table: DeviceTable,
    /// Its status (the cache its I/O really goes through, dirty lines).
    pub status: DeviceStatus,
    /// Its sysfs directory (after `add_sysfs`).
    pub sysfs: Option<DeviceNodes>,
    /// Its device-mapper info (as `dmsetup info` shows it).
    #[serde(skip)]
    pub info: Option<DmInfo>,
}

impl WbDevice {
    /// The device id.
    pub fn id(&self) -> u8 {
        self.table.device_id
    }

    /// `id (name)`, for messages.
    pub fn label(&self) -> String {
        format!("device {} ({})", self.table.device_id, self.name)
    }

    /// The cache the device's I/O goes through (0: none).
    pub fn bound_cache(&self) -> u8 {
        self.status.cache_id
    }
}

/// Every writeboost device, sorted by device id. A device whose table has
/// several targets is reported as an error when it is looked up by id.
pub fn devices(dm: &Dm, sys: &Sys) -> Result<Vec<WbDevice>> {
    let tables = dm.list_target("table", "writeboost")?;
    let statuses = dm.list_target("status", "writeboost")?;
    let infos = dm.info_all()?;
    let mut v = Vec::new();
    for (name, line) in &tables {
        // Devices of the 2.2 form have no device id: see `devices22`.
        if is_22_line(line) {
            continue;
        }
        let table = DeviceTable::parse(line).map_err(|e| Error::failed(format!("{}: {}", name, e)))?;
        let Some((_, sline)) = statuses.iter().find(|(n, _)| n == name) else { continue };
        let status = DeviceStatus::parse(sline).map_err(|e| Error::failed(format!("{}: {}", name, e)))?;
        // The sysfs directory of this id belongs to this device only if its
        // `dev` is this device.
        let info = infos.iter().find(|i| &i.name == name).cloned();
        let sysfs = sys.device(table.device_id).ok().flatten().filter(|s| {
            info.as_ref().is_none_or(|i| s.dev == DevNo { major: i.major, minor: i.minor })
        });
        v.push(WbDevice { name: name.clone(), table, status, sysfs, info });
    }
    v.sort_by_key(|d| d.table.device_id);
    Ok(v)
}

/// A writeboost device of the dm-writeboost 2.2 table form (with a private
/// cache).
#[derive(Clone, Debug, Serialize)]
pub struct Wb22Device {
    /// Its device-mapper name.
    pub name: String,
    /// Its table.
    pub table: Device22Table,
    /// Its status, field by field.
    pub status: Device22Status,
    /// Its `dmsetup info`.
    #[serde(skip)]
    pub info: Option<DmInfo>,
}

/// Every writeboost device of the 2.2 form, sorted by name.
pub fn devices22(dm: &Dm) -> Result<Vec<Wb22Device>> {
    let tables = dm.list_target("table", "writeboost")?;
    let statuses = dm.list_target("status", "writeboost")?;
    let infos = dm.info_all()?;
    let mut v = Vec::new();
    for (name, line) in tables.iter().filter(|(_, l)| is_22_line(l)) {
        let table = Device22Table::parse(line).map_err(|e| Error::failed(format!("{}: {}", name, e)))?;
        let Some((_, sline)) = statuses.iter().find(|(n, _)| n == name) else { continue };
        let status = Device22Status::parse(sline).map_err(|e| Error::failed(format!("{}: {}", name, e)))?;
        let info = infos.iter().find(|i| &i.name == name).cloned();
        v.push(Wb22Device { name: name.clone(), table, status, info });
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

/// The device with this id; a clear error if there is none.
pub fn device_by_id(dm: &Dm, sys: &Sys, id: u8) -> Result<WbDevice> {
    let all = devices(dm, sys)?;
    let mut it = all.into_iter().filter(|d| d.table.device_id == id);
    let d = it.next().ok_or_else(|| Error::invalid(format!("there is no writeboost device with device id {} (see writeboost-status)", id)))?;
    if let Some(other) = it.next() {
        if other.name == d.name {
            return Err(Error::invalid(format!("{} has several writeboost targets; these tools manage single-target devices only", d.name)));
        }
    }
    Ok(d)
}

/// Every resumed cache, sorted by id.
pub fn caches(sys: &Sys) -> Result<Vec<CacheNodes>> {
    let mut v = Vec::new();
    for id in sys.cache_ids() {
        // A cache freed while we read is simply gone.
        if let Ok(Some(c)) = sys.cache(id) {
            v.push(c);
        }
    }
    Ok(v)
}

/// The manager's device name; a clear error if the module is not loaded or
/// there is no manager.
pub fn require_mgr(dm: &Dm, sys: &Sys) -> Result<String> {
    sys.require_module()?;
    dm.mgr_name()?.ok_or_else(|| Error::invalid("the writeboost manager does not exist (create it with: writeboost-create --mgr)"))
}

/// The cache with this id; a clear error if it is not resumed.
pub fn require_cache(sys: &Sys, id: u8) -> Result<CacheNodes> {
    sys.cache(id)?.ok_or_else(|| {
        Error::invalid(format!("cache {} is not resumed (resume it with: writeboost-resume-cache {} <cache device>)", id, id))
    })
}

/// `device 1 (wb1)`, `devices 1 (wb1), 2 (wb2)`.
pub fn list_labels(devs: &[&WbDevice]) -> String {
    let l = devs.iter().map(|d| format!("{} ({})", d.table.device_id, d.name)).collect::<Vec<_>>().join(", ");
    format!("{} {}", if devs.len() == 1 { "device" } else { "devices" }, l)
}
