// SPDX-License-Identifier: GPL-2.0

//! The `writeboost-mgr` target: the singleton control device.
//!
//! Table: `0 1 writeboost-mgr` (no arguments). Messages select a cache id
//! (`switch_to`) and act on it; `dmsetup status` shows the selected cache,
//! or for id 0 the global sizes.

use core::fmt::Write;

use kernel::prelude::*;

use crate::ctr_err;
use crate::ffi::{Args, Bio, CtrError, DevT, MapResult, Out, Target, TargetOps};
use crate::parse;
use crate::registry::{self, MAX_ID};

/// The private data of the manager target.
pub(crate) struct MgrTarget {
    md: usize,
}

/// On-disk size of a segment header's used part (header fields plus 255
/// metablocks of 12 bytes); must fit the 4096-byte header block.
const SEGMENT_HEADER_DEVICE_BYTES: usize = 64 + 255 * 12;
/// On-disk size of one metablock.
const METABLOCK_DEVICE_BYTES: usize = 12;
/// In-memory size of one metablock (index entry).
const METABLOCK_BYTES: usize = 24;
/// In-memory size of one segment's state.
const SEGMENT_HEADER_BYTES: usize = 16;

impl TargetOps for MgrTarget {
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<KBox<Self>, CtrError> {
        if args.len() != 0 {
            return Err(ctr_err!(EINVAL, "writeboost-mgr takes no arguments (table: 0 1 writeboost-mgr), got {}", args.len()));
        }
        let md = t.md_id();
        registry::with(|tables| tables.add_mgr(md, t.md_devt()))
            .map_err(|e| ctr_err!(e, "module is unloading"))?
            .map_err(|devt| ctr_err!(EBUSY, "a writeboost-mgr already exists (device {}); only one is allowed", DevT(devt)))?;
        t.setup_mgr();
        KBox::new(MgrTarget { md }, GFP_KERNEL).map_err(|_| {
            let _ = registry::with(|tables| tables.remove_mgr(md));
            ctr_err!(ENOMEM, "out of memory")
        })
    }

    fn dtr(&self, _t: &Target<'_>) {
        let _ = registry::with(|tables| tables.remove_mgr(self.md));
    }

    fn map(&self, _t: &Target<'_>, bio: Bio) -> MapResult {
        // Never called: the C shim completes manager I/O itself.
        bio.end(Ok(()));
        MapResult::Submitted
    }

    fn status(&self, _t: &Target<'_>, table: bool, out: &mut Out<'_>) {
        if table {
            return;
        }
        let ptr = registry::with(|t| t.cache_id_ptr).unwrap_or(0);
        let _ = write!(out, "\ncurrent cache_id_ptr: {}", ptr);
        if ptr == 0 {
            let _ = write!(
                out,
                "\nsizeof struct\nmetablock: {}\nmetablock_device: {}\nsegment_header: {}\nsegment_header_device: {} (<= 4096)",
                METABLOCK_BYTES, METABLOCK_DEVICE_BYTES, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_DEVICE_BYTES
            );
        }
    }

    fn message(&self, _t: &Target<'_>, args: &Args<'_>, _out: &mut Out<'_>) -> Result<bool> {
        let name = args.str(0).unwrap_or("");
        if parse::is(name, "switch_to") {
            let Some(arg) = args.str(1).filter(|_| args.len() == 2) else {
                pr_err!("writeboost-mgr: usage: switch_to <cache_id 0..{}>\n", MAX_ID);
                return Err(EINVAL);
            };
            let Some(id) = parse::ranged(arg, 0, MAX_ID as u64) else {
                pr_err!("writeboost-mgr: switch_to: invalid cache_id '{}' (must be 0..{})\n", arg, MAX_ID);
                return Err(EINVAL);
            };
            registry::with(|t| t.cache_id_ptr = id as u8)?;
            return Ok(false);
        }
        pr_err!("writeboost-mgr: unknown message '{}'\n", name);
        Err(EINVAL)
    }
}
