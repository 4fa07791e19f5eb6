// SPDX-License-Identifier: GPL-2.0

//! dm-writeboost: a log-structured write-back SSD cache for device-mapper.
//!
//! Two targets: `writeboost` (a logical device over a backing disk,
//! optionally attached to a cache) and the singleton control target
//! `writeboost-mgr`, which formats, resumes, selects and frees caches. See
//! `Documentation/` for the interfaces, the on-disk format and the design.
//!
//! Layers, top to bottom: [`mgr`] and [`device`] (the two targets) use
//! [`registry`] (the module-wide tables of devices and caches) and
//! [`cache`]; all of them are safe Rust over [`ffi`], the only module with
//! raw pointers, which wraps the C shim `wb_shim.c`. Pure logic (on-disk
//! format, checksums, index, recovery) is in `wbformat`, shared with the
//! userland tools and tested on the host.

// `pin_init!` of the `Cache` struct expands one level per field.
#![recursion_limit = "256"]

use kernel::prelude::*;

mod cache;
mod device;
mod device22;
mod ffi;
mod mgr;
mod parse;
mod registry;

/// The pure, `no_std` on-disk format and cache logic, shared with the tools
/// and tested on the host (`rust/wbformat`).
#[path = "wbformat/src"]
#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
mod wbformat {
    pub mod compat;
    pub mod crc32c;
    pub mod engine;
    pub mod format;
    pub mod index;
    pub mod recovery;
}

module! {
    type: WriteBoost,
    name: "dm_writeboost",
    author: "The writeboost developers",
    description: "Log-structured write-back SSD cache for device-mapper",
    license: "GPL",
}

struct WriteBoost {
    // Field order is drop order: unregister the targets (no more callbacks)
    // before the registry they use is freed.
    _targets: ffi::Registration,
    _registry: ffi::GlobalGuard<registry::Registry>,
}

impl kernel::Module for WriteBoost {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registry = registry::install()?;
        let targets = ffi::Registration::new::<device::DeviceTarget, mgr::MgrTarget, registry::Sysfs>()?;
        match ffi::crc32c_pick() {
            Ok(c) => pr_info!(
                "CRC32C: {} implementation ({} us per 64 KiB; the other {} us)\n",
                if c.tables { "table-driven" } else { "accelerated" },
                if c.tables { c.tables_ns } else { c.accel_ns } / 1000,
                if c.tables { c.accel_ns } else { c.tables_ns } / 1000
            ),
            Err(e) => pr_warn!("CRC32C: could not measure the implementations (error {}); using the accelerated one\n", e.to_errno()),
        }
        pr_info!("xxh64 (segment checksum of version 4 caches): {} us per 64 KiB\n", ffi::xxh64_time_ns() / 1000);
        pr_info!("loaded: targets writeboost and writeboost-mgr registered\n");
        Ok(Self { _targets: targets, _registry: registry })
    }
}
