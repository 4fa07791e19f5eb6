// SPDX-License-Identifier: GPL-2.0

//! The only module that touches raw pointers.
//!
//! It includes the bindgen output for `wb_shim.h` (generated at build time by
//! `scripts/gen-shim-bindings.sh`) and wraps it in safe types:
//!
//! - [`Target`]: the `dm_target` a callback runs for, valid for the call;
//! - [`Bio`]: an in-flight bio that this module must complete exactly once;
//! - [`BioList`]: an allocation-free FIFO of held bios (uses `bi_next`);
//! - [`DmDev`]: a device opened through a target's table;
//! - [`BdevFile`]: a block device opened by path or number, independent of
//!   any table;
//! - [`IoBatch`] and [`sync_io`]: dm-io reads and writes;
//! - [`KThread`]: a kernel thread running a method of an `Arc<T>`;
//! - [`SysfsDir`]: a sysfs directory whose attributes call back into Rust;
//! - [`Out`]: the bounded text buffer of `status`, `message` and sysfs.
//!
//! It also holds the `extern "C"` entry points that C calls, each checked
//! against its typedef in `wb_shim.h`. They dispatch to the [`TargetOps`]
//! and [`SysfsOps`] types given to [`Registration::new`], through function
//! pointers built per type: this module is a leaf that names no type of the
//! layers above it. Nothing above this module sees a raw pointer.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::AtomicI32;

use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::types::ForeignOwnable;

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    improper_ctypes,
    clippy::all
)]
mod sys {
    use kernel::ffi;
    include!("wb_shim_generated.rs");
}

/// Alias for the generated bindings, for the compile-time signature checks.
type CInt = kernel::ffi::c_int;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Converts a negative errno returned by C into a `Result`.
fn check(r: CInt) -> Result {
    if r < 0 {
        Err(Error::from_errno(r))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

/// The two kinds of target this module registers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TargetKind {
    /// `writeboost`: a logical device over a backing disk.
    Device,
    /// `writeboost-mgr`: the control target.
    Mgr,
}

impl TargetKind {
    fn from_c(kind: CInt) -> Option<Self> {
        match kind as u32 {
            sys::wb_target_kind_WB_TARGET_DEVICE => Some(Self::Device),
            sys::wb_target_kind_WB_TARGET_MGR => Some(Self::Mgr),
            _ => None,
        }
    }
}

/// A `struct dm_target` for the duration of one callback.
///
/// # Invariants
///
/// `ptr` points to a live `dm_target` for the lifetime `'a`: device-mapper
/// keeps the target alive while it runs any of its callbacks.
pub(crate) struct Target<'a> {
    ptr: NonNull<sys::dm_target>,
    _life: PhantomData<&'a sys::dm_target>,
}

impl<'a> Target<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid `dm_target` for `'a`.
    unsafe fn from_raw(ptr: *mut sys::dm_target) -> Option<Self> {
        // INVARIANT: the caller guarantees validity for 'a.
        NonNull::new(ptr).map(|ptr| Self { ptr, _life: PhantomData })
    }

    fn raw(&self) -> *mut sys::dm_target {
        self.ptr.as_ptr()
    }

    /// Sets the error message device-mapper prints when the constructor fails.
    pub(crate) fn set_error(&self, msg: &CStr) {
        // SAFETY: `self.raw()` is valid by the type invariant; the shim copies
        // the message into storage that outlives the call.
        unsafe { sys::wb_ti_set_error(self.raw(), msg.as_char_ptr()) };
    }

    /// First sector of this target in its table.
    pub(crate) fn begin(&self) -> u64 {
        // SAFETY: valid target by the type invariant.
        unsafe { sys::wb_ti_begin(self.raw()) }
    }

    /// Length of this target in sectors.
    pub(crate) fn len(&self) -> u64 {
        // SAFETY: valid target by the type invariant.
        unsafe { sys::wb_ti_len(self.raw()) }
    }

    /// An identity for the mapped device owning this target's table; two
    /// tables of one DM device (a reload) give the same value.
    pub(crate) fn md_id(&self) -> usize {
        // SAFETY: valid target by the type invariant; the table and its
        // mapped device are alive during the callback.
        unsafe { sys::wb_ti_md(self.raw()) as usize }
    }

    /// An identity for the table this target is part of (the targets of
    /// one table give the same value; a reload's new table another one).
    pub(crate) fn table_id(&self) -> usize {
        // SAFETY: valid target by the type invariant.
        unsafe { sys::wb_ti_table(self.raw()) as usize }
    }

    /// `dev_t` of the mapped device this target belongs to.
    pub(crate) fn md_devt(&self) -> u32 {
        // SAFETY: as for `md_id`.
        unsafe { sys::wb_ti_md_devt(self.raw()) }
    }

    /// Configures a `writeboost` target: flush and discard support, per-bio
    /// data, and (if non-zero) the maximum I/O size in sectors.
    pub(crate) fn setup_device(&self, max_io_sectors: u32) -> Result {
        // SAFETY: valid target by the type invariant; called from the ctr.
        check(unsafe { sys::wb_ti_setup_device(self.raw(), max_io_sectors) })
    }

    /// Configures a `writeboost-mgr` target.
    pub(crate) fn setup_mgr(&self) {
        // SAFETY: valid target by the type invariant; called from the ctr.
        unsafe { sys::wb_ti_setup_mgr(self.raw()) }
    }

    /// Opens `path` through this target's table (`dm_get_device`).
    pub(crate) fn get_device(&self, path: &CStr) -> Result<DmDev> {
        let mut dev: *mut sys::dm_dev = core::ptr::null_mut();
        // SAFETY: valid target; `path` is NUL-terminated; `dev` is written
        // only on success.
        check(unsafe { sys::wb_get_device(self.raw(), path.as_char_ptr(), &mut dev) })?;
        let dev = NonNull::new(dev).ok_or(EINVAL)?;
        // INVARIANT: dm_get_device succeeded for this target.
        Ok(DmDev { dev, ti: self.ptr })
    }
}

/// A device opened with `dm_get_device` against a target's table.
///
/// # Invariants
///
/// `dev` was returned by `dm_get_device(ti, ...)` and is put exactly once, in
/// `drop`. It is only dropped inside a callback of `ti` (the owner, a
/// device target's private data, is freed in its destructor), so `ti` is
/// alive then.
pub(crate) struct DmDev {
    dev: NonNull<sys::dm_dev>,
    ti: NonNull<sys::dm_target>,
}

// SAFETY: a `dm_dev` may be used and released from any process context.
unsafe impl Send for DmDev {}
// SAFETY: the shared methods only read immutable fields.
unsafe impl Sync for DmDev {}

impl DmDev {
    /// The opened block device.
    pub(crate) fn bdev(&self) -> Bdev<'_> {
        // SAFETY: `dev` is valid by the type invariant.
        let b = unsafe { sys::wb_dm_dev_bdev(self.dev.as_ptr()) };
        Bdev { ptr: b, _life: PhantomData }
    }
}

impl Drop for DmDev {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `dev` came from `dm_get_device` on
        // `ti`, which is alive, and this is the only put.
        unsafe { sys::wb_put_device(self.ti.as_ptr(), self.dev.as_ptr()) };
    }
}

/// A borrowed block device.
///
/// # Invariants
///
/// `ptr` is a valid `block_device` for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Bdev<'a> {
    ptr: *mut sys::block_device,
    _life: PhantomData<&'a sys::block_device>,
}

impl Bdev<'_> {
    /// Size in 512-byte sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_bdev_sectors(self.ptr) }
    }

    /// Logical block size in bytes: the smallest I/O the device takes
    /// (512, or 4096 for a disk with 4 KiB sectors).
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_bdev_logical_block_size(self.ptr) }
    }

    /// Device number (`MKDEV(major, minor)`).
    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_bdev_devt(self.ptr) }
    }

    /// The disk's identity as the cache registry records it: a hash of a
    /// name of the disk that is the same across boots (never 0).
    pub(crate) fn identity(&self) -> Result<u64> {
        let mut buf = [0u8; 160];
        // SAFETY: valid by the type invariant; `buf` is writable for its
        // length; process context (it may sleep).
        let n = unsafe { sys::wb_bdev_identity(self.ptr, buf.as_mut_ptr().cast(), buf.len() as u32) };
        if n < 0 {
            return Err(Error::from_errno(n));
        }
        let name = buf.get(..n as usize).ok_or(EINVAL)?;
        Ok(crate::wbformat::format::backing_identity(name))
    }

    /// Milliseconds the device has spent doing I/O since boot (the
    /// `io_ticks` of /proc/diskstats): its utilisation over an interval is
    /// the difference divided by the interval.
    pub(crate) fn io_ticks_ms(&self) -> u64 {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_bdev_io_ticks_ms(self.ptr) }
    }

    /// Sends a cache flush (REQ_PREFLUSH) and waits for it.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: valid by the type invariant; process context.
        check(unsafe { sys::wb_bdev_flush(self.ptr) })
    }
}

/// Formats a device number as `major:minor`.
pub(crate) struct DevT(pub(crate) u32);

impl core::fmt::Display for DevT {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.0 >> 20, self.0 & 0xfffff)
    }
}

/// A block device opened by path or number, owned by this module.
///
/// # Invariants
///
/// `file` is an open block-device file, closed exactly once in `drop`.
pub(crate) struct BdevFile {
    file: NonNull<sys::file>,
    /// The exclusive holder: a unique address per open, so that two opens
    /// by this module also exclude each other. Freed after the close.
    _holder: Option<KBox<u8>>,
}

// SAFETY: the file may be used and closed from any process context.
unsafe impl Send for BdevFile {}
// SAFETY: shared use only submits I/O, which the block layer serialises.
unsafe impl Sync for BdevFile {}

impl BdevFile {
    /// Opens `path` for reading and writing. With `exclusive`, nobody else
    /// may open it exclusively (a mounted file system, another cache) while
    /// this one is open.
    pub(crate) fn open_path(path: &CStr, exclusive: bool) -> Result<Self> {
        let holder_box = if exclusive { Some(KBox::new(0u8, GFP_KERNEL)?) } else { None };
        let holder = holder_box
            .as_ref()
            .map_or(core::ptr::null_mut(), |b| &**b as *const u8 as *mut kernel::ffi::c_void);
        let mut err: CInt = 0;
        // SAFETY: `path` is NUL-terminated; the holder is null or an address
        // that stays allocated until after the close (`_holder`).
        let f = unsafe { sys::wb_bdev_open_path(path.as_char_ptr(), holder, &mut err) };
        match NonNull::new(f) {
            // INVARIANT: the open succeeded.
            Some(file) => Ok(Self { file, _holder: holder_box }),
            None => Err(Error::from_errno(if err < 0 { err } else { -22 })),
        }
    }

    /// Opens `name`, a path or `major:minor` (as a table names devices),
    /// for reading and writing; with `exclusive` as [`BdevFile::open_path`].
    pub(crate) fn open_name(name: &CStr, exclusive: bool) -> Result<Self> {
        match name.to_str().ok().and_then(crate::wbformat::compat::parse_maj_min) {
            Some(devt) if exclusive => Self::claim_devt(devt),
            Some(devt) => Self::open_devt(devt),
            None => Self::open_path(name, exclusive),
        }
    }

    /// Opens the block device with number `devt`, shared.
    pub(crate) fn open_devt(devt: u32) -> Result<Self> {
        let mut err: CInt = 0;
        // SAFETY: plain scalar arguments; a null holder opens shared.
        let f = unsafe { sys::wb_bdev_open_devt(devt, core::ptr::null_mut(), &mut err) };
        match NonNull::new(f) {
            // INVARIANT: the open succeeded.
            Some(file) => Ok(Self { file, _holder: None }),
            None => Err(Error::from_errno(if err < 0 { err } else { -22 })),
        }
    }

    /// Claims the block device with number `devt`: opens it exclusively, so
    /// that no file system, device-mapper table or other exclusive opener
    /// can open it while this lives (EBUSY for them).
    pub(crate) fn claim_devt(devt: u32) -> Result<Self> {
        let holder_box = KBox::new(0u8, GFP_KERNEL)?;
        let holder = &*holder_box as *const u8 as *mut kernel::ffi::c_void;
        let mut err: CInt = 0;
        // SAFETY: the holder is an address that stays allocated until after
        // the close (`_holder`).
        let f = unsafe { sys::wb_bdev_open_devt(devt, holder, &mut err) };
        match NonNull::new(f) {
            // INVARIANT: the open succeeded.
            Some(file) => Ok(Self { file, _holder: Some(holder_box) }),
            None => Err(Error::from_errno(if err < 0 { err } else { -22 })),
        }
    }

    /// The block device.
    pub(crate) fn bdev(&self) -> Bdev<'_> {
        // SAFETY: `file` is open by the type invariant.
        let b = unsafe { sys::wb_file_bdev(self.file.as_ptr()) };
        Bdev { ptr: b, _life: PhantomData }
    }
}

impl Drop for BdevFile {
    fn drop(&mut self) {
        // SAFETY: open by the type invariant, closed only here.
        unsafe { sys::wb_bdev_close(self.file.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------
// Bios
// ---------------------------------------------------------------------------

/// What a bio asks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BioOp {
    /// Read data.
    Read,
    /// Write data (possibly with REQ_PREFLUSH and/or REQ_FUA).
    Write,
    /// An empty flush (REQ_PREFLUSH with no data).
    Flush,
    /// Discard a range.
    Discard,
    /// Anything else (write-zeroes, secure erase...).
    Other,
}

/// An in-flight bio that this module owns and must complete exactly once:
/// by [`Bio::end`], or by handing it back to device-mapper through
/// [`MapResult::Remapped`].
///
/// # Invariants
///
/// `ptr` is a bio that device-mapper passed to `map` and that has not been
/// completed or handed back yet, or a direct write whose remapped I/O
/// completed and that the shim's `end_io` handed over through a
/// [`DirectQueue`] (ending it runs `end_io` again, which then passes).
pub(crate) struct Bio {
    ptr: NonNull<sys::bio>,
}

// SAFETY: a bio may be completed from any context; ownership moves with it.
unsafe impl Send for Bio {}

impl Bio {
    /// The operation.
    pub(crate) fn op(&self) -> BioOp {
        // SAFETY: valid bio by the type invariant.
        match unsafe { sys::wb_bio_op(self.ptr.as_ptr()) } as u32 {
            sys::wb_bio_op_WB_BIO_READ => BioOp::Read,
            sys::wb_bio_op_WB_BIO_WRITE => BioOp::Write,
            sys::wb_bio_op_WB_BIO_FLUSH => BioOp::Flush,
            sys::wb_bio_op_WB_BIO_DISCARD => BioOp::Discard,
            _ => BioOp::Other,
        }
    }

    /// Whether the bio carries REQ_PREFLUSH.
    pub(crate) fn is_preflush(&self) -> bool {
        // SAFETY: valid bio.
        unsafe { sys::wb_bio_preflush(self.ptr.as_ptr()) }
    }

    /// Whether the bio carries REQ_FUA.
    pub(crate) fn is_fua(&self) -> bool {
        // SAFETY: valid bio.
        unsafe { sys::wb_bio_fua(self.ptr.as_ptr()) }
    }

    /// First sector (on the mapped device, before any remap).
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: valid bio.
        unsafe { sys::wb_bio_sector(self.ptr.as_ptr()) }
    }

    /// Length in sectors.
    pub(crate) fn sectors(&self) -> u32 {
        // SAFETY: valid bio.
        unsafe { sys::wb_bio_sectors(self.ptr.as_ptr()) }
    }

    /// Sends the bio to `bdev` at `sector` (the caller then returns
    /// [`MapResult::Remapped`]).
    pub(crate) fn remap(&mut self, bdev: Bdev<'_>, sector: u64) {
        // SAFETY: valid bio and block device.
        unsafe { sys::wb_bio_remap(self.ptr.as_ptr(), bdev.ptr, sector) }
    }

    /// Keeps only the first `sectors` sectors of this bio for this `map`
    /// call; device-mapper resubmits the rest as a new bio. Only valid
    /// inside `map`, before the bio is completed or remapped.
    pub(crate) fn accept_partial(&mut self, sectors: u32) {
        // SAFETY: valid bio; called from map (dm_accept_partial_bio's rule).
        unsafe { sys::wb_bio_accept_partial(self.ptr.as_ptr(), sectors) }
    }

    /// Which of a target's duplicated bios this is: 0 or 1 for the two
    /// clones DM sends of each empty flush (`num_flush_bios` is 2).
    pub(crate) fn target_nr(&self) -> u32 {
        // SAFETY: valid bio, passed to map by DM.
        unsafe { sys::wb_bio_target_nr(self.ptr.as_ptr()) }
    }

    /// Length in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.sectors() as usize * 512
    }

    /// Arranges for `counter` to be decremented when the (remapped) bio
    /// completes.
    ///
    /// # Safety
    ///
    /// `counter` must stay allocated until the bio completes. The cache
    /// guarantees it by waiting for every such counter to reach zero before
    /// it frees or reuses what the counter protects.
    pub(crate) unsafe fn set_inflight(&mut self, counter: &AtomicI32) {
        // SAFETY: valid bio; `AtomicI32` has the layout of `int` (and of
        // `atomic_t`, checked in the shim); lifetime is the caller's duty.
        unsafe { sys::wb_bio_set_inflight(self.ptr.as_ptr(), counter.as_ptr()) }
    }

    /// Marks the (remapped) bio as a direct write: when it completes, the
    /// shim counts it down in `w` (setting its failure flag if it failed;
    /// the caller counted it up with [`WaitCount::inc`]) and, instead of
    /// completing it, queues it on `dq` with `ticket` (see
    /// [`DirectQueue::take`]); the taker ends it.
    ///
    /// # Safety
    ///
    /// `w` and `dq` must stay allocated until the bio is ended. The cache
    /// guarantees it: they live as long as the cache, its completion
    /// thread ends every queued bio before the cache stops it, and a cache
    /// outlives the devices whose bios it remaps (a device's in-flight
    /// bios end before its destructor runs).
    pub(crate) unsafe fn set_direct(&mut self, w: &WaitCount, dq: &DirectQueue, ticket: &[u32; TICKET_WORDS]) {
        // SAFETY: valid bio, count and queue; the ticket is read at once;
        // lifetimes are the caller's duty.
        unsafe { sys::wb_bio_set_direct(self.ptr.as_ptr(), w.ptr.as_ptr(), dq.ptr.as_ptr(), ticket.as_ptr()) }
    }

    /// The ticket and completion status (0 or a negative errno) of a
    /// direct write taken from a [`DirectQueue`].
    pub(crate) fn direct_ticket(&self) -> ([u32; TICKET_WORDS], i32) {
        let mut t = [0u32; TICKET_WORDS];
        // SAFETY: valid bio of this target; `t` has the shim's length.
        let status = unsafe { sys::wb_bio_direct_ticket(self.ptr.as_ptr(), t.as_mut_ptr()) };
        (t, status)
    }

    /// Completes the bio with `result`.
    pub(crate) fn end(self, result: Result) {
        let err = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        let p = self.ptr.as_ptr();
        core::mem::forget(self);
        // SAFETY: valid, not yet completed bio (type invariant); `forget`
        // guarantees this is the only completion.
        unsafe { sys::wb_bio_endio(p, err) };
    }

    fn into_raw(self) -> *mut sys::bio {
        let p = self.ptr.as_ptr();
        core::mem::forget(self);
        p
    }
}

impl Drop for Bio {
    /// A bio must never be leaked: if a code path forgets to complete one,
    /// fail it rather than hang its submitter.
    fn drop(&mut self) {
        pr_err!("internal error: bio dropped without completion; failing it\n");
        // SAFETY: valid, not yet completed bio (type invariant); `drop` runs once.
        unsafe { sys::wb_bio_endio(self.ptr.as_ptr(), -5) };
    }
}

/// A FIFO of held bios, linked through `bi_next`: pushing never allocates.
///
/// # Invariants
///
/// Every bio on the list is owned by the list (as by a [`Bio`]); `tail` is
/// the last one, or null when `head` is null.
pub(crate) struct BioList {
    head: *mut sys::bio,
    tail: *mut sys::bio,
    len: usize,
}

// SAFETY: the list owns its bios, which may move between threads.
unsafe impl Send for BioList {}

impl BioList {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        Self { head: core::ptr::null_mut(), tail: core::ptr::null_mut(), len: 0 }
    }

    /// Whether the list is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Appends a bio.
    pub(crate) fn push(&mut self, bio: Bio) {
        let p = bio.into_raw();
        // SAFETY: `p` is a valid bio now owned by the list; `tail`, when not
        // null, is a bio owned by the list.
        unsafe {
            sys::wb_bio_set_next(p, core::ptr::null_mut());
            if self.tail.is_null() {
                self.head = p;
            } else {
                sys::wb_bio_set_next(self.tail, p);
            }
        }
        self.tail = p;
        self.len += 1;
    }

    /// Removes the first bio.
    pub(crate) fn pop(&mut self) -> Option<Bio> {
        let p = NonNull::new(self.head)?;
        // SAFETY: `p` is a bio owned by the list.
        unsafe {
            self.head = sys::wb_bio_next(p.as_ptr());
            sys::wb_bio_set_next(p.as_ptr(), core::ptr::null_mut());
        }
        if self.head.is_null() {
            self.tail = core::ptr::null_mut();
        }
        self.len -= 1;
        // INVARIANT: ownership moves from the list to the `Bio`.
        Some(Bio { ptr: p })
    }

    /// Moves every bio of `other` to the end of `self`.
    pub(crate) fn append(&mut self, other: &mut BioList) {
        while let Some(b) = other.pop() {
            self.push(b);
        }
    }

    /// Completes every bio with `result`.
    pub(crate) fn end_all(&mut self, result: Result) {
        while let Some(b) = self.pop() {
            b.end(result);
        }
    }
}

impl Drop for BioList {
    fn drop(&mut self) {
        if !self.is_empty() {
            pr_err!("internal error: {} held bios dropped; failing them\n", self.len);
            self.end_all(Err(EIO));
        }
    }
}

/// What `map` did with a bio.
pub(crate) enum MapResult {
    /// The bio was remapped; device-mapper submits it.
    Remapped(Bio),
    /// The module completed the bio or holds it to complete later.
    Submitted,
}

// ---------------------------------------------------------------------------
// Arguments and text output
// ---------------------------------------------------------------------------

/// The arguments of a constructor or message.
///
/// # Invariants
///
/// `argv` holds `argc` valid NUL-terminated strings for `'a`.
pub(crate) struct Args<'a> {
    argv: &'a [*mut kernel::ffi::c_char],
}

impl<'a> Args<'a> {
    /// # Safety
    ///
    /// `argv` must point to `argc` NUL-terminated strings valid for `'a`.
    unsafe fn from_raw(argc: u32, argv: *mut *mut kernel::ffi::c_char) -> Self {
        let argv = if argc == 0 || argv.is_null() {
            &[][..]
        } else {
            // SAFETY: the caller guarantees `argc` valid entries.
            unsafe { core::slice::from_raw_parts(argv, argc as usize) }
        };
        // INVARIANT: as guaranteed by the caller.
        Self { argv }
    }

    /// Number of arguments.
    pub(crate) fn len(&self) -> usize {
        self.argv.len()
    }

    /// Argument `i` as a C string.
    pub(crate) fn cstr(&self, i: usize) -> Option<&'a CStr> {
        let p = *self.argv.get(i)?;
        // SAFETY: each entry is a valid NUL-terminated string (invariant).
        Some(unsafe { CStr::from_char_ptr(p) })
    }

    /// Argument `i` as UTF-8 (`None` if missing or not UTF-8).
    pub(crate) fn str(&self, i: usize) -> Option<&'a str> {
        self.cstr(i)?.to_str().ok()
    }
}

/// A bounded, always NUL-terminated text buffer supplied by C (the result of
/// `status` and `message`, or a sysfs page). Output past the end is dropped.
///
/// # Invariants
///
/// `buf` points to `cap` writable bytes for `'a`; `len < cap` when `cap > 0`
/// and `buf[len] == 0`.
pub(crate) struct Out<'a> {
    buf: *mut u8,
    cap: usize,
    len: usize,
    _life: PhantomData<&'a mut [u8]>,
}

impl Out<'_> {
    /// # Safety
    ///
    /// `buf` must point to `cap` writable bytes for the returned lifetime.
    unsafe fn from_raw(buf: *mut kernel::ffi::c_char, cap: usize) -> Self {
        let buf = buf.cast::<u8>();
        if cap > 0 && !buf.is_null() {
            // SAFETY: `cap >= 1` writable bytes.
            unsafe { *buf = 0 };
        }
        let cap = if buf.is_null() { 0 } else { cap };
        // INVARIANT: terminated at 0.
        Self { buf, cap, len: 0, _life: PhantomData }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

}

impl core::fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.cap == 0 {
            return Ok(());
        }
        let room = self.cap - 1 - self.len;
        let n = s.len().min(room);
        // SAFETY: `len + n <= cap - 1`, inside the buffer (invariant); the
        // source is a valid `&str` that cannot overlap a C buffer we own.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), n);
            self.len += n;
            // INVARIANT: re-terminate.
            *self.buf.add(self.len) = 0;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// dm-io
// ---------------------------------------------------------------------------

/// Direction and flags of a dm-io request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IoKind {
    /// Read into the buffer.
    Read,
    /// Write the buffer.
    Write,
    /// Write with REQ_PREFLUSH | REQ_FUA.
    WriteFlushFua,
    /// Write with REQ_PREFLUSH: every write completed before it is durable
    /// before it is.
    WriteFlush,
}

impl IoKind {
    fn flags(self) -> CInt {
        let f = match self {
            IoKind::Read => sys::wb_io_flags_WB_IO_READ,
            IoKind::Write => sys::wb_io_flags_WB_IO_WRITE,
            IoKind::WriteFlushFua => {
                sys::wb_io_flags_WB_IO_WRITE | sys::wb_io_flags_WB_IO_FUA | sys::wb_io_flags_WB_IO_PREFLUSH
            }
            IoKind::WriteFlush => sys::wb_io_flags_WB_IO_WRITE | sys::wb_io_flags_WB_IO_PREFLUSH,
        };
        f as CInt
    }
}

fn io_len_ok(buf_len: usize, nr_sectors: u64) -> Result {
    match (nr_sectors as usize).checked_mul(512) {
        Some(n) if n <= buf_len && nr_sectors > 0 => Ok(()),
        _ => Err(EINVAL),
    }
}

/// Synchronously reads or writes `nr_sectors` at `sector` through `buf`.
pub(crate) fn sync_io(bdev: Bdev<'_>, sector: u64, nr_sectors: u64, buf: &mut [u8], kind: IoKind) -> Result {
    io_len_ok(buf.len(), nr_sectors)?;
    // SAFETY: valid device; `buf` covers the I/O and stays borrowed until the
    // synchronous call returns.
    check(unsafe { sys::wb_io_sync(bdev.ptr, sector, nr_sectors, buf.as_mut_ptr().cast(), kind.flags()) })
}

/// Words of a direct write's ticket in its per-bio data.
pub(crate) const TICKET_WORDS: usize = sys::wb_ticket_WB_TICKET_WORDS as usize;

/// Completed direct writes, queued by the shim's `end_io` (interrupt
/// context) for the cache's completion thread (see [`Bio::set_direct`]).
///
/// # Invariants
///
/// `ptr` was returned by `wb_dq_new` and is freed only by `drop`.
pub(crate) struct DirectQueue {
    ptr: NonNull<sys::wb_dq>,
}

// SAFETY: an `llist` (lock-free, any context) and a wait queue (its own
// lock): every operation is safe from any thread.
unsafe impl Send for DirectQueue {}
// SAFETY: as above.
unsafe impl Sync for DirectQueue {}

impl DirectQueue {
    /// An empty queue (ENOMEM if it cannot be allocated).
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let p = unsafe { sys::wb_dq_new() };
        NonNull::new(p).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// Waits at most `ms` milliseconds for completed direct writes (or for
    /// the calling kthread to be asked to stop) and takes them all, in
    /// completion order. Each must be ended ([`Bio::end`]). May sleep.
    pub(crate) fn take(&self, ms: u32) -> BioList {
        // SAFETY: valid queue (invariant); called from a kthread.
        let head = unsafe { sys::wb_dq_take(self.ptr.as_ptr(), ms) };
        let mut list = BioList::new();
        let mut p = head;
        while let Some(b) = NonNull::new(p) {
            // SAFETY: `b` is a bio of the chain the shim handed over.
            p = unsafe { sys::wb_bio_next(b.as_ptr()) };
            // INVARIANT: the queued bio is owned by this thread now and is
            // ended exactly once, through the list.
            list.push(Bio { ptr: b });
        }
        list
    }
}

impl Drop for DirectQueue {
    fn drop(&mut self) {
        // SAFETY: allocated by `wb_dq_new` (invariant), freed once.
        unsafe { sys::wb_dq_free(self.ptr.as_ptr()) }
    }
}

/// A fixed-length array of `T` in vmalloc'd memory, for the tables whose
/// size follows the cache's (the index). It is allocated with
/// `__GFP_RETRY_MAYFAIL`: when memory is short the allocation fails
/// (`ENOMEM`, and the resume that wanted it fails with a message) instead
/// of invoking the OOM killer, which the kernel crate's `VVec` (plain
/// `GFP_KERNEL`) may do.
///
/// # Invariants
///
/// If `len * size_of::<T>() > 0`, `ptr` was returned by
/// `wb_vmalloc_mayfail` for at least that many bytes, holds `len`
/// initialized values and is freed only by `drop`; otherwise it is
/// dangling (and never freed).
pub(crate) struct BigVec<T> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: a `BigVec` owns its values as a `KVec` does.
unsafe impl<T: Send> Send for BigVec<T> {}
// SAFETY: as above; shared access gives only `&T`.
unsafe impl<T: Sync> Sync for BigVec<T> {}

impl<T: Copy> BigVec<T> {
    /// `len` copies of `value`. Errors: `ENOMEM` if the memory cannot be
    /// had without the OOM killer (or `len` values overflow `usize` bytes).
    /// May sleep.
    pub(crate) fn from_elem(value: T, len: usize) -> Result<Self> {
        let bytes = len.checked_mul(core::mem::size_of::<T>()).ok_or(ENOMEM)?;
        if bytes == 0 {
            return Ok(Self { ptr: NonNull::dangling(), len });
        }
        // vmalloc'd memory is page-aligned: enough for any `T` here.
        const { assert!(core::mem::align_of::<T>() <= 4096) };
        // SAFETY: no preconditions; may sleep (as this function may).
        let p = unsafe { sys::wb_vmalloc_mayfail(bytes) }.cast::<T>();
        let ptr = NonNull::new(p).ok_or(ENOMEM)?;
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation of `len` values.
            unsafe { ptr.as_ptr().add(i).write(value) };
        }
        Ok(Self { ptr, len })
    }
}

impl<T> core::ops::Deref for BigVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialized values at `ptr` (or a dangling pointer
        // for zero bytes, valid for an empty or zero-sized slice).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> core::ops::DerefMut for BigVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for BigVec<T> {
    fn drop(&mut self) {
        if self.len * core::mem::size_of::<T>() > 0 {
            // The values are `Copy` (no destructor to run).
            // SAFETY: allocated by `wb_vmalloc_mayfail` (invariant), freed once.
            unsafe { sys::wb_vfree(self.ptr.as_ptr().cast()) }
        }
    }
}

/// A count of bios in flight that the shim's `end_io` counts down (see
/// [`Bio::set_direct`]), with a wait queue woken when it reaches 0 and a
/// sticky flag set when one of them failed: the direct writes into one RAM
/// buffer's segment.
///
/// # Invariants
///
/// `ptr` was returned by `wb_waitcount_new` and is freed only by `drop`.
pub(crate) struct WaitCount {
    ptr: NonNull<sys::wb_waitcount>,
}

// SAFETY: the count is an `atomic_t`, the flag too, and the wait queue has
// its own lock: every operation on it is safe from any thread.
unsafe impl Send for WaitCount {}
// SAFETY: as above.
unsafe impl Sync for WaitCount {}

impl WaitCount {
    /// A zero count (ENOMEM if it cannot be allocated).
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let p = unsafe { sys::wb_waitcount_new() };
        NonNull::new(p).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// Counts one more bio in flight.
    pub(crate) fn inc(&self) {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_waitcount_inc(self.ptr.as_ptr()) }
    }

    /// Bios in flight now.
    pub(crate) fn count(&self) -> i32 {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_waitcount_read(self.ptr.as_ptr()) }
    }

    /// Waits at most `ms` milliseconds for the count to reach 0; whether it
    /// did. May sleep.
    pub(crate) fn wait_zero(&self, ms: u32) -> bool {
        // SAFETY: valid by the type invariant; called from a thread that
        // may sleep (the flusher).
        unsafe { sys::wb_waitcount_wait(self.ptr.as_ptr(), ms) }
    }

    /// Whether one of the bios counted so far failed (sticky).
    pub(crate) fn failed(&self) -> bool {
        // SAFETY: valid by the type invariant.
        unsafe { sys::wb_waitcount_failed(self.ptr.as_ptr()) }
    }
}

impl Drop for WaitCount {
    fn drop(&mut self) {
        // SAFETY: allocated by `wb_waitcount_new` (invariant), freed once.
        unsafe { sys::wb_waitcount_free(self.ptr.as_ptr()) }
    }
}

/// A vmalloc'd byte buffer shared between threads: the cache's RAM
/// buffers, which `map` callers fill line by line while other threads read
/// other lines, or write the whole buffer to disk.
///
/// Data only moves in and out through C (`memcpy` to and from bios, dm-io),
/// never through Rust references, except through [`SharedBuf::slice`] and
/// [`SharedBuf::slice_mut`], whose callers promise exclusion. Concurrent
/// copies to and from the same bytes can only happen when the block layer
/// itself leaves the result undefined (a read racing a write of the same
/// sector), exactly as with a C driver's buffers.
///
/// # Invariants
///
/// `ptr` points to `len` bytes owned by `_mem`, which is never accessed
/// directly after construction.
pub(crate) struct SharedBuf {
    ptr: *mut u8,
    len: usize,
    _mem: kernel::alloc::VVec<u8>,
}

// SAFETY: the memory is owned and only reached through the methods below.
unsafe impl Send for SharedBuf {}
// SAFETY: see the type documentation: shared use goes through C copies.
unsafe impl Sync for SharedBuf {}

impl SharedBuf {
    /// A zeroed buffer of `len` bytes.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let mut mem = kernel::alloc::VVec::from_elem(0u8, len, GFP_KERNEL)?;
        let ptr = mem.as_mut_ptr();
        // INVARIANT: `ptr` covers the `len` bytes of `mem`.
        Ok(Self { ptr, len, _mem: mem })
    }

    fn range(&self, off: usize, len: usize) -> Result<*mut u8> {
        match off.checked_add(len) {
            // SAFETY: `off + len <= self.len`, inside the allocation.
            Some(end) if end <= self.len => Ok(unsafe { self.ptr.add(off) }),
            _ => Err(EINVAL),
        }
    }

    /// Copies a write bio's payload to `off..off + bio.bytes()`.
    pub(crate) fn fill_from_bio(&self, off: usize, bio: &Bio) -> Result {
        let p = self.range(off, bio.bytes())?;
        // SAFETY: valid bio; `p` has room for its payload (checked above).
        unsafe { sys::wb_bio_copy_to_buf(bio.ptr.as_ptr(), p.cast()) };
        Ok(())
    }

    /// Copies `src` to `off..off + src.len()` (the migrator moving a parked
    /// line; the engine reserved those bytes for it, as for a bio).
    pub(crate) fn fill_from_slice(&self, off: usize, src: &[u8]) -> Result {
        let p = self.range(off, src.len())?;
        // SAFETY: `p` has room for `src.len()` bytes (checked above) and
        // cannot overlap `src`, which is not part of this buffer's memory.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
        Ok(())
    }

    /// Copies `off..off + bio.bytes()` into a read bio.
    pub(crate) fn copy_to_bio(&self, off: usize, bio: &mut Bio) -> Result {
        let p = self.range(off, bio.bytes())?;
        // SAFETY: valid bio; `p` holds as many bytes as its payload.
        unsafe { sys::wb_bio_copy_from_buf(bio.ptr.as_ptr(), p.cast()) };
        Ok(())
    }

    /// Synchronous dm-io of `nr_sectors` at `sector` to or from the buffer
    /// starting at byte `off`.
    pub(crate) fn io(&self, bdev: Bdev<'_>, sector: u64, nr_sectors: u64, off: usize, kind: IoKind) -> Result {
        let bytes = usize::try_from(nr_sectors).ok().and_then(|n| n.checked_mul(512)).ok_or(EINVAL)?;
        let p = self.range(off, bytes)?;
        // SAFETY: valid device; `p` covers the transfer and the buffer lives
        // until this synchronous call returns.
        check(unsafe { sys::wb_io_sync(bdev.ptr, sector, nr_sectors, p.cast(), kind.flags()) })
    }

    /// A shared view of `off..off + len`.
    ///
    /// # Safety
    ///
    /// Nobody may write those bytes while the returned slice is alive.
    pub(crate) unsafe fn slice(&self, off: usize, len: usize) -> Result<&[u8]> {
        let p = self.range(off, len)?;
        // SAFETY: in bounds (checked); no writer by the caller's promise.
        Ok(unsafe { core::slice::from_raw_parts(p, len) })
    }

    /// An exclusive view of `off..off + len`.
    ///
    /// # Safety
    ///
    /// Nobody else may read or write those bytes while the slice is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, off: usize, len: usize) -> Result<&mut [u8]> {
        let p = self.range(off, len)?;
        // SAFETY: in bounds (checked); exclusive by the caller's promise.
        Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
    }
}

/// A set of asynchronous I/Os waited for together.
///
/// # Invariants
///
/// `b` is a live batch owned by this value. Between `add` and `wait`, the
/// buffers of added writes stay borrowed (`'buf`), so they cannot be freed
/// or modified while the I/O runs; `wait` or `drop` waits for all of them.
pub(crate) struct IoBatch<'buf> {
    b: NonNull<sys::wb_io_batch>,
    outstanding: bool,
    _bufs: PhantomData<&'buf mut [u8]>,
}

impl<'buf> IoBatch<'buf> {
    /// A new, empty batch.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no arguments.
        let b = unsafe { sys::wb_io_batch_alloc() };
        let b = NonNull::new(b).ok_or(ENOMEM)?;
        Ok(Self { b, outstanding: false, _bufs: PhantomData })
    }

    /// Starts a write of `buf`, which stays borrowed until [`IoBatch::wait`].
    pub(crate) fn add_write(&mut self, bdev: Bdev<'_>, sector: u64, nr_sectors: u64, buf: &'buf [u8], kind: IoKind) -> Result {
        io_len_ok(buf.len(), nr_sectors)?;
        if kind == IoKind::Read {
            return Err(EINVAL);
        }
        self.outstanding = true;
        // SAFETY: live batch; `buf` is borrowed for 'buf (invariant) and the
        // write only reads it, so a shared borrow suffices.
        check(unsafe {
            sys::wb_io_batch_add(self.b.as_ptr(), bdev.ptr, sector, nr_sectors, buf.as_ptr() as *mut _, kind.flags())
        })
    }

    /// Waits for every I/O added so far; returns the first error.
    pub(crate) fn wait(&mut self) -> Result {
        self.outstanding = false;
        // SAFETY: live batch.
        check(unsafe { sys::wb_io_batch_wait(self.b.as_ptr()) })
    }
}

impl Drop for IoBatch<'_> {
    fn drop(&mut self) {
        if self.outstanding {
            let _ = self.wait();
        }
        // SAFETY: live batch with nothing in flight, freed once.
        unsafe { sys::wb_io_batch_free(self.b.as_ptr()) };
    }
}

/// One asynchronous read into a buffer this value owns (read-ahead): the
/// bytes are handed out only after the read completed.
///
/// # Invariants
///
/// `b` is a live batch owned by this value. While `pending` is `Some`, a
/// read of `bdev` into `buf`'s heap memory is in flight: nothing else
/// touches `buf` (a private field; it is never resized, so its memory does
/// not move), and `wait`, `cancel` or `drop` waits for the read first.
pub(crate) struct ReadAhead<'a> {
    b: NonNull<sys::wb_io_batch>,
    bdev: Bdev<'a>,
    buf: kernel::alloc::VVec<u8>,
    /// `(sector, nr_sectors)` of the read in flight.
    pending: Option<(u64, u64)>,
}

impl<'a> ReadAhead<'a> {
    /// A read-ahead of up to `len` bytes from `bdev`.
    pub(crate) fn new(bdev: Bdev<'a>, len: usize) -> Result<Self> {
        let buf = kernel::alloc::VVec::from_elem(0u8, len, GFP_KERNEL)?;
        // SAFETY: no preconditions.
        let b = unsafe { sys::wb_io_batch_alloc() };
        let b = NonNull::new(b).ok_or(ENOMEM)?;
        // INVARIANT: nothing in flight yet.
        Ok(Self { b, bdev, buf, pending: None })
    }

    /// The read in flight, as `(sector, nr_sectors)`.
    pub(crate) fn pending(&self) -> Option<(u64, u64)> {
        self.pending
    }

    /// Starts reading `nr_sectors` at `sector` (EBUSY while one is in flight,
    /// EINVAL if it does not fit the buffer).
    pub(crate) fn start(&mut self, sector: u64, nr_sectors: u64) -> Result {
        if self.pending.is_some() {
            return Err(EBUSY);
        }
        io_len_ok(self.buf.len(), nr_sectors)?;
        let p = self.buf.as_mut_ptr();
        // SAFETY: live batch and device; `p` covers `nr_sectors` sectors
        // (checked) of memory nobody else touches until the read was waited
        // for (type invariant).
        let r = check(unsafe { sys::wb_io_batch_add(self.b.as_ptr(), self.bdev.ptr, sector, nr_sectors, p.cast(), IoKind::Read.flags()) });
        // Even a failed add is waited for (the batch counts it).
        self.pending = Some((sector, nr_sectors));
        if r.is_err() {
            self.cancel();
        }
        r
    }

    /// Waits for the read in flight and returns its bytes (EINVAL if none).
    pub(crate) fn wait(&mut self) -> Result<&[u8]> {
        let Some((_, nr)) = self.pending.take() else { return Err(EINVAL) };
        // SAFETY: live batch.
        check(unsafe { sys::wb_io_batch_wait(self.b.as_ptr()) })?;
        self.buf.get(..(nr as usize).saturating_mul(512)).ok_or(EINVAL)
    }

    /// Waits for the read in flight, if any, and drops its bytes.
    pub(crate) fn cancel(&mut self) {
        if self.pending.take().is_some() {
            // SAFETY: live batch.
            let _ = unsafe { sys::wb_io_batch_wait(self.b.as_ptr()) };
        }
    }
}

impl Drop for ReadAhead<'_> {
    fn drop(&mut self) {
        self.cancel();
        // SAFETY: live batch with nothing in flight, freed once.
        unsafe { sys::wb_io_batch_free(self.b.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------
// Threads, time, randomness, checksums
// ---------------------------------------------------------------------------

/// The body of a kernel thread run by [`KThread`].
pub(crate) trait ThreadBody: Send + Sync {
    /// Runs until [`should_stop`] returns true.
    fn run(&self);
}

/// A kernel thread running `T::run` on a shared `Arc<T>`.
///
/// # Invariants
///
/// `task` is a started kthread holding a task reference; `data` is the
/// `Arc<T>` pointer it was given, kept alive until the thread is stopped.
pub(crate) struct KThread<T: ThreadBody + 'static> {
    task: NonNull<sys::task_struct>,
    data: *const kernel::ffi::c_void,
    _t: PhantomData<Arc<T>>,
}

// SAFETY: the handle only stops the thread and drops an `Arc<T: Send+Sync>`.
unsafe impl<T: ThreadBody> Send for KThread<T> {}
// SAFETY: no shared methods.
unsafe impl<T: ThreadBody> Sync for KThread<T> {}

unsafe extern "C" fn thread_main<T: ThreadBody + 'static>(data: *mut kernel::ffi::c_void) -> CInt {
    // SAFETY: `data` came from `Arc::into_foreign` in `KThread::spawn` and is
    // only released after `kthread_stop` returned, i.e. after this returns.
    let this = unsafe { <Arc<T> as ForeignOwnable>::borrow(data) };
    // The cache threads write segments and write back dirty data: an
    // allocation that entered reclaim and waited for I/O (swap on a
    // writeboost device) could wait for these very threads. Everything
    // they allocate is GFP_NOIO.
    // SAFETY: plain calls; the flags are restored on the same task.
    let flags = unsafe { sys::wb_noio_save() };
    this.run();
    // SAFETY: as above.
    unsafe { sys::wb_noio_restore(flags) };
    0
}

impl<T: ThreadBody + 'static> KThread<T> {
    /// Starts a thread named `name` running `body.run()`.
    pub(crate) fn spawn(name: &CStr, body: Arc<T>) -> Result<Self> {
        let data = body.into_foreign();
        let mut err: CInt = 0;
        let f: unsafe extern "C" fn(*mut kernel::ffi::c_void) -> CInt = thread_main::<T>;
        // SAFETY: `f` matches wbrs_thread_fn; `data` stays valid until stop.
        let task = unsafe { sys::wb_kthread_run(Some(f), data as *mut _, name.as_char_ptr(), &mut err) };
        match NonNull::new(task) {
            // INVARIANT: started, with a task reference.
            Some(task) => Ok(Self { task, data, _t: PhantomData }),
            None => {
                // SAFETY: the thread never started; reclaim the reference.
                drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(data) });
                Err(Error::from_errno(if err < 0 { err } else { -12 }))
            }
        }
    }
}

impl<T: ThreadBody + 'static> Drop for KThread<T> {
    fn drop(&mut self) {
        // SAFETY: started thread with a task reference (invariant); this
        // waits for `run` to return and drops the task reference.
        unsafe { sys::wb_kthread_stop(self.task.as_ptr()) };
        // SAFETY: the thread has exited, so nothing borrows `data` any more.
        drop(unsafe { <Arc<T> as ForeignOwnable>::from_foreign(self.data) });
    }
}

/// Whether the current kernel thread has been asked to stop.
pub(crate) fn should_stop() -> bool {
    // SAFETY: only meaningful in a kthread, which is where it is called.
    unsafe { sys::wb_kthread_should_stop() }
}

/// Whether the current task has a signal pending (an interruptible wait
/// should end).
pub(crate) fn signal_pending() -> bool {
    // SAFETY: no arguments; reads the current task's state.
    unsafe { sys::wb_signal_pending() }
}

/// Whether the current task is being killed (SIGKILL, or a fatal signal
/// it does not handle): long work done for it in its system call (a
/// replay) should stop.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: no arguments; reads the current task's state.
    unsafe { sys::wb_fatal_signal_pending() }
}

/// Sleeps for `ms` milliseconds.
pub(crate) fn msleep(ms: u32) {
    // SAFETY: plain scalar; process context.
    unsafe { sys::wb_msleep(ms) }
}

/// Bytes of memory the kernel counts as available (`MemAvailable` of
/// /proc/meminfo: free memory plus what reclaim can take back).
pub(crate) fn mem_available_bytes() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::wb_mem_available_bytes() }
}

/// Monotonic time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::wb_now_ms() }
}

/// Rate limit of a log line a failing disk could repeat: true at most once
/// per 10 s for one `last` (milliseconds of [`now_ms`] when it last said
/// yes; 0: never). Racing callers may both get true once; that is harmless.
pub(crate) fn every_10s(last: &core::sync::atomic::AtomicU64) -> bool {
    use core::sync::atomic::Ordering;
    let now = now_ms();
    let then = last.load(Ordering::Relaxed);
    if then != 0 && now.saturating_sub(then) <= 10_000 {
        return false;
    }
    last.store(now.max(1), Ordering::Relaxed);
    true
}

/// Wall-clock seconds since the epoch.
pub(crate) fn real_seconds() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::wb_real_seconds() }
}

/// A random 64-bit value.
pub(crate) fn random_u64() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::wb_random_u64() }
}

/// Raw CRC32C update with the kernel's faster implementation on this
/// machine (see [`crc32c_pick`]); same semantics as
/// `wbformat::crc32c::crc32c_raw_update`.
pub(crate) fn crc32c_update(state: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid slice for the call.
    unsafe { sys::wb_crc32c(state, data.as_ptr().cast(), data.len() as _) }
}

/// xxh64 with seed 0 of the concatenation of `pieces`, with the kernel's
/// `lib/xxhash.c` (the segment checksum of superblock version 4 caches,
/// `wbformat::format::SegmentSum::Xxh64`).
pub(crate) fn xxh64_pieces(pieces: [&[u8]; 4]) -> u64 {
    let [a, b, c, d] = pieces;
    // SAFETY: the four slices are valid for reads of their lengths during
    // the call; the C function only reads them.
    unsafe {
        sys::wb_xxh64_4(
            a.as_ptr().cast(),
            a.len() as _,
            b.as_ptr().cast(),
            b.len() as _,
            c.as_ptr().cast(),
            c.len() as _,
            d.as_ptr().cast(),
            d.len() as _,
        )
    }
}

/// Nanoseconds xxh64 took for 64 KiB, measured once (0 if the buffer could
/// not be allocated); for the load-time log line.
pub(crate) fn xxh64_time_ns() -> u64 {
    // SAFETY: no arguments.
    unsafe { sys::wb_xxh64_time() }
}

/// The segment checksum of a cache whose superblock is `sb`, with the
/// kernel's implementations.
pub(crate) fn segment_sum(sb: &crate::wbformat::format::Superblock) -> crate::wbformat::format::SegmentSum {
    sb.segment_sum(crc32c_update, xxh64_pieces)
}

/// Which CRC32C implementation [`crc32c_update`] uses, and what each took
/// for 64 KiB when measured.
pub(crate) struct CrcChoice {
    /// The table-driven one won (else the accelerated one).
    pub(crate) tables: bool,
    /// Nanoseconds of the accelerated implementation.
    pub(crate) accel_ns: u64,
    /// Nanoseconds of the table-driven one.
    pub(crate) tables_ns: u64,
}

/// Measures both CRC32C implementations of the kernel once (module load)
/// and makes [`crc32c_update`] use the faster; both give the same result
/// (checked).
pub(crate) fn crc32c_pick() -> Result<CrcChoice> {
    let (mut accel_ns, mut tables_ns) = (0u64, 0u64);
    // SAFETY: both pointers are valid for writes during the call.
    let r = unsafe { sys::wb_crc32c_pick(&mut accel_ns, &mut tables_ns) };
    if r < 0 {
        return Err(Error::from_errno(r));
    }
    Ok(CrcChoice { tables: r == 1, accel_ns, tables_ns })
}

/// Pins the module while something needs it (a cache); see [`ModuleRef`].
pub(crate) struct ModuleRef(());

impl ModuleRef {
    /// Takes a module reference, failing if the module is being unloaded.
    pub(crate) fn get() -> Result<Self> {
        // SAFETY: no arguments.
        if unsafe { sys::wb_module_get() } {
            Ok(Self(()))
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: paired with the successful get in `ModuleRef::get`.
        unsafe { sys::wb_module_put() }
    }
}

// ---------------------------------------------------------------------------
// sysfs
// ---------------------------------------------------------------------------

/// The kind of a sysfs directory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SysfsKind {
    /// `/sys/module/dm_writeboost/devices/<id>`.
    Device,
    /// `/sys/module/dm_writeboost/caches/<id>`.
    Cache,
}

impl SysfsKind {
    fn to_c(self) -> CInt {
        (match self {
            SysfsKind::Device => sys::wb_sysfs_kind_WB_SYSFS_DEVICE,
            SysfsKind::Cache => sys::wb_sysfs_kind_WB_SYSFS_CACHE,
        }) as CInt
    }
}

/// A sysfs directory. Its kobject holds only (kind, id): attribute calls
/// look the object up by id, so they can never reach freed memory.
///
/// # Invariants
///
/// `k` is a live directory removed exactly once, in `drop`.
pub(crate) struct SysfsDir {
    k: NonNull<sys::wb_kobj>,
}

// SAFETY: kobjects may be removed from any process context.
unsafe impl Send for SysfsDir {}
// SAFETY: no shared methods.
unsafe impl Sync for SysfsDir {}

impl SysfsDir {
    /// Creates the directory for `id`, with a `device` link to `link`'s disk.
    pub(crate) fn add(kind: SysfsKind, id: u8, link: Option<Bdev<'_>>) -> Result<Self> {
        let mut err: CInt = 0;
        let l = link.map_or(core::ptr::null_mut(), |b| b.ptr);
        // SAFETY: valid kind; `l` is null or a valid block device.
        let k = unsafe { sys::wb_sysfs_add(kind.to_c(), id as u32, l, &mut err) };
        NonNull::new(k)
            .map(|k| Self { k })
            .ok_or_else(|| Error::from_errno(if err < 0 { err } else { -12 }))
    }
}

impl Drop for SysfsDir {
    fn drop(&mut self) {
        // SAFETY: live directory, removed once (invariant).
        unsafe { sys::wb_sysfs_del(self.k.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// Registers both targets and the sysfs roots; unregistered on drop.
///
/// # Invariants
///
/// The targets are registered, and `_dispatch` holds the callbacks their C
/// entry points call, for as long as this value lives.
pub(crate) struct Registration {
    _dispatch: GlobalGuard<Dispatch>,
}

impl Registration {
    /// Registers `writeboost` (callbacks of `D`) and `writeboost-mgr`
    /// (callbacks of `M`), with the sysfs attributes of `S`.
    pub(crate) fn new<D: TargetOps, M: TargetOps, S: SysfsOps>() -> Result<Self> {
        let d = KBox::pin(
            Dispatch { device: KindOps::of::<D>(), mgr: KindOps::of::<M>(), show: S::show, store: S::store },
            GFP_KERNEL,
        )?;
        let guard = DISPATCH.install(d);
        // SAFETY: called once from module init; the callbacks are installed.
        check(unsafe { sys::wb_shim_register() })?;
        // INVARIANT: registered, with the dispatch installed.
        Ok(Self { _dispatch: guard })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: paired with the successful register; module exit, after
        // which no callback can run (DM holds a module reference per table).
        // The dispatch is freed after this, when the field drops.
        unsafe { sys::wb_shim_unregister() };
    }
}

/// The attributes of the sysfs directories `devices/<id>` and
/// `caches/<id>`, implemented above this layer.
pub(crate) trait SysfsOps: 'static {
    /// Shows attribute `attr` of directory `kind`/`id` into `out`.
    fn show(kind: SysfsKind, id: u8, attr: &str, out: &mut Out<'_>) -> Result;
    /// Stores `input` into attribute `attr` of directory `kind`/`id`.
    fn store(kind: SysfsKind, id: u8, attr: &str, input: &[u8]) -> Result;
}

/// The callbacks of one target kind: a [`TargetOps`] type's methods behind
/// plain function pointers, so this layer names no target type.
struct KindOps {
    ctr: fn(&Target<'_>, &Args<'_>) -> CInt,
    dtr: fn(&Target<'_>),
    map: fn(&Target<'_>, *mut sys::bio) -> CInt,
    status: fn(&Target<'_>, bool, &mut Out<'_>),
    message: fn(&Target<'_>, &Args<'_>, &mut Out<'_>) -> Result<bool>,
    postsuspend: fn(&Target<'_>),
    preresume: fn(&Target<'_>) -> Result,
    backing: fn(&Target<'_>) -> *mut sys::dm_dev,
}

impl KindOps {
    fn of<T: TargetOps>() -> Self {
        Self {
            ctr: ctr_impl::<T>,
            dtr: dtr_impl::<T>,
            map: map_impl::<T>,
            status: status_impl::<T>,
            message: message_impl::<T>,
            postsuspend: postsuspend_impl::<T>,
            preresume: preresume_impl::<T>,
            backing: backing_impl::<T>,
        }
    }
}

/// What the C entry points dispatch to (installed by [`Registration`]).
pub(crate) struct Dispatch {
    device: KindOps,
    mgr: KindOps,
    show: fn(SysfsKind, u8, &str, &mut Out<'_>) -> Result,
    store: fn(SysfsKind, u8, &str, &[u8]) -> Result,
}

static DISPATCH: Global<Dispatch> = Global::new();

/// The callbacks of target kind `kind` (from C).
fn kind_ops(kind: CInt) -> Option<&'static KindOps> {
    let d = DISPATCH.get()?;
    match TargetKind::from_c(kind)? {
        TargetKind::Device => Some(&d.device),
        TargetKind::Mgr => Some(&d.mgr),
    }
}

// ---------------------------------------------------------------------------
// Entry points called by C
// ---------------------------------------------------------------------------

/// Bytes of a [`Msg`], its NUL included (`WB_ERR_LEN` in `wb_shim.c`, the
/// storage of `ti->error`, is the same). Not more: messages live on the
/// stack, and a table constructor that resumes a cache runs deep (with 384
/// bytes, `dmsetup create` of a 2.2-form device overflowed the kernel
/// stack). Log a longer text with `pr_err!` before.
const MSG_LEN: usize = 160;

/// A short message in a fixed buffer (no allocation), always NUL-terminated;
/// longer text is truncated. It carries the errno the failed operation
/// returns (`EINVAL` unless set with [`Msg::errno`]).
pub(crate) struct Msg {
    buf: [u8; MSG_LEN],
    len: usize,
    err: Error,
}

impl Msg {
    /// Formats `args` into a new message (errno `EINVAL`).
    pub(crate) fn new(args: core::fmt::Arguments<'_>) -> Self {
        let mut m = Self { buf: [0; MSG_LEN], len: 0, err: EINVAL };
        let _ = core::fmt::Write::write_fmt(&mut m, args);
        m
    }

    /// The same message with errno `err`.
    pub(crate) fn errno(mut self, err: Error) -> Self {
        self.err = err;
        self
    }

    /// The errno the failed operation returns.
    pub(crate) fn error(&self) -> Error {
        self.err
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    fn as_cstr(&self) -> &CStr {
        // The buffer always has a NUL at `len` and no NUL before it
        // (`write_str` drops NUL bytes).
        CStr::from_bytes_with_nul(&self.buf[..self.len + 1]).unwrap_or(kernel::c_str!("error"))
    }
}

impl core::fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &c in s.as_bytes() {
            // Keep one byte for the terminator; stop at a char boundary so
            // the text stays valid UTF-8.
            if self.len + 1 >= self.buf.len() || (c & 0xc0 == 0xc0 && self.len + 5 >= self.buf.len()) {
                break;
            }
            if c != 0 {
                self.buf[self.len] = c;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// An error from a constructor: the errno and the message for `ti->error`.
pub(crate) struct CtrError {
    /// The error returned to device-mapper.
    pub(crate) err: Error,
    /// What the user is told.
    pub(crate) msg: Msg,
}

/// Builds a [`CtrError`] with a formatted message.
#[macro_export]
macro_rules! ctr_err {
    ($err:expr, $($arg:tt)*) => {
        $crate::ffi::CtrError { err: $err, msg: $crate::ffi::Msg::new(format_args!($($arg)*)) }
    };
}

/// The operations of one target type. `Self` is the target's private data,
/// boxed in `ti->private` between the constructor and the destructor.
pub(crate) trait TargetOps: Sized + Send + Sync + 'static {
    /// Builds the target from its table arguments.
    fn ctr(t: &Target<'_>, args: &Args<'_>) -> core::result::Result<KBox<Self>, CtrError>;
    /// Tears the target down (runs before the box is dropped).
    fn dtr(&self, _t: &Target<'_>) {}
    /// Maps one bio.
    fn map(&self, t: &Target<'_>, bio: Bio) -> MapResult;
    /// Writes the INFO or TABLE status line.
    fn status(&self, t: &Target<'_>, table: bool, out: &mut Out<'_>);
    /// Handles a message; returns true if it wrote a reply into `out`.
    fn message(&self, t: &Target<'_>, args: &Args<'_>, out: &mut Out<'_>) -> Result<bool>;
    /// Called after the device is suspended.
    fn postsuspend(&self, _t: &Target<'_>) {}
    /// Called before the device is resumed with this table (also its
    /// first resume); an error aborts the resume and leaves the device
    /// suspended with this table.
    fn preresume(&self, _t: &Target<'_>) -> Result {
        Ok(())
    }
    /// The underlying device reported by iterate_devices.
    fn backing(&self) -> Option<&DmDev> {
        None
    }
}

/// # Safety
///
/// `ti` must be a live target whose private data, if set, is a
/// `KBox<T>` installed by `ctr_impl::<T>`.
unsafe fn private<'a, T: TargetOps>(ti: &Target<'a>) -> Option<&'a T> {
    // SAFETY: valid target by the `Target` invariant.
    let p = unsafe { sys::wb_ti_private(ti.raw()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: per this function's contract, `p` is a `KBox<T>` foreign
    // pointer that stays installed until the destructor, after 'a.
    Some(unsafe { <KBox<T> as ForeignOwnable>::borrow(p) })
}

fn ctr_impl<T: TargetOps>(t: &Target<'_>, args: &Args<'_>) -> CInt {
    match T::ctr(t, args) {
        Ok(b) => {
            let p = b.into_foreign();
            // SAFETY: valid target; ownership of the box moves to ti->private
            // until the destructor reclaims it.
            unsafe { sys::wb_ti_set_private(t.raw(), p as *mut _) };
            0
        }
        Err(e) => {
            t.set_error(e.msg.as_cstr());
            e.err.to_errno()
        }
    }
}

fn dtr_impl<T: TargetOps>(t: &Target<'_>) {
    // SAFETY: valid target.
    let p = unsafe { sys::wb_ti_private(t.raw()) };
    if p.is_null() {
        return;
    }
    // SAFETY: installed by `ctr_impl::<T>`; DM calls the destructor once and
    // no other callback of this target runs concurrently with it.
    let b = unsafe { <KBox<T> as ForeignOwnable>::from_foreign(p) };
    b.dtr(t);
    // SAFETY: valid target; clear the stale pointer.
    unsafe { sys::wb_ti_set_private(t.raw(), core::ptr::null_mut()) };
    drop(b);
}

fn map_impl<T: TargetOps>(t: &Target<'_>, bio: *mut sys::bio) -> CInt {
    let Some(ptr) = NonNull::new(bio) else {
        return sys::wb_map_result_WB_MAP_KILL as CInt;
    };
    // INVARIANT: DM hands this bio to map; it is ours until completed or
    // returned as REMAPPED.
    let bio = Bio { ptr };
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    match unsafe { private::<T>(t) } {
        Some(this) => match this.map(t, bio) {
            MapResult::Remapped(b) => {
                let _ = b.into_raw();
                sys::wb_map_result_WB_MAP_REMAPPED as CInt
            }
            MapResult::Submitted => sys::wb_map_result_WB_MAP_SUBMITTED as CInt,
        },
        None => {
            bio.end(Err(EIO));
            sys::wb_map_result_WB_MAP_SUBMITTED as CInt
        }
    }
}

fn status_impl<T: TargetOps>(t: &Target<'_>, table: bool, out: &mut Out<'_>) {
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    if let Some(this) = unsafe { private::<T>(t) } {
        this.status(t, table, out);
    }
}

fn message_impl<T: TargetOps>(t: &Target<'_>, args: &Args<'_>, out: &mut Out<'_>) -> Result<bool> {
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    match unsafe { private::<T>(t) } {
        Some(this) => this.message(t, args, out),
        None => Err(EINVAL),
    }
}

fn postsuspend_impl<T: TargetOps>(t: &Target<'_>) {
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    if let Some(this) = unsafe { private::<T>(t) } {
        this.postsuspend(t);
    }
}

fn preresume_impl<T: TargetOps>(t: &Target<'_>) -> Result {
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    match unsafe { private::<T>(t) } {
        Some(this) => this.preresume(t),
        None => Ok(()),
    }
}

fn backing_impl<T: TargetOps>(t: &Target<'_>) -> *mut sys::dm_dev {
    // SAFETY: private data installed by ctr_impl::<T> (same target kind).
    match unsafe { private::<T>(t) }.and_then(|d| d.backing()) {
        Some(d) => d.dev.as_ptr(),
        None => core::ptr::null_mut(),
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_ctr(kind: CInt, ti: *mut sys::dm_target, argc: u32, argv: *mut *mut kernel::ffi::c_char) -> CInt {
    // SAFETY: DM passes a live target for the duration of the call.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: DM passes `argc` valid strings.
    let args = unsafe { Args::from_raw(argc, argv) };
    match kind_ops(kind) {
        Some(o) => (o.ctr)(&t, &args),
        None => EINVAL.to_errno(),
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_dtr(kind: CInt, ti: *mut sys::dm_target) {
    // SAFETY: DM passes a live target.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else { return };
    if let Some(o) = kind_ops(kind) {
        (o.dtr)(&t);
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_map(kind: CInt, ti: *mut sys::dm_target, bio: *mut sys::bio) -> CInt {
    // SAFETY: DM passes a live target for the call.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else {
        return sys::wb_map_result_WB_MAP_KILL as CInt;
    };
    match kind_ops(kind) {
        Some(o) => (o.map)(&t, bio),
        None => sys::wb_map_result_WB_MAP_KILL as CInt,
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_status(kind: CInt, ti: *mut sys::dm_target, ty: CInt, result: *mut kernel::ffi::c_char, maxlen: u32) {
    // SAFETY: DM passes a live target for the duration of the call.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else {
        return;
    };
    // SAFETY: DM passes a `maxlen`-byte result buffer.
    let mut out = unsafe { Out::from_raw(result, maxlen as usize) };
    let table = match ty as u32 {
        sys::wb_status_type_WB_STATUS_INFO => false,
        sys::wb_status_type_WB_STATUS_TABLE => true,
        _ => return, // IMA: nothing to measure.
    };
    if let Some(o) = kind_ops(kind) {
        (o.status)(&t, table, &mut out);
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_message(
    kind: CInt,
    ti: *mut sys::dm_target,
    argc: u32,
    argv: *mut *mut kernel::ffi::c_char,
    result: *mut kernel::ffi::c_char,
    maxlen: u32,
) -> CInt {
    // SAFETY: DM passes a live target for the duration of the call.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: DM passes `argc` valid strings.
    let args = unsafe { Args::from_raw(argc, argv) };
    // SAFETY: DM passes a `maxlen`-byte result buffer.
    let mut out = unsafe { Out::from_raw(result, maxlen as usize) };
    let r = match kind_ops(kind) {
        Some(o) => (o.message)(&t, &args, &mut out),
        None => Err(EINVAL),
    };
    match r {
        Ok(true) => 1,
        Ok(false) => 0,
        Err(e) => e.to_errno(),
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_postsuspend(kind: CInt, ti: *mut sys::dm_target) {
    // SAFETY: DM passes a live target.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else { return };
    if let Some(o) = kind_ops(kind) {
        (o.postsuspend)(&t);
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_preresume(kind: CInt, ti: *mut sys::dm_target) -> CInt {
    // SAFETY: DM passes a live target.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else { return EINVAL.to_errno() };
    match kind_ops(kind).map(|o| (o.preresume)(&t)) {
        Some(Err(e)) => e.to_errno(),
        _ => 0,
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_backing(ti: *mut sys::dm_target) -> *mut sys::dm_dev {
    // SAFETY: DM passes a live device target.
    let Some(t) = (unsafe { Target::from_raw(ti) }) else { return core::ptr::null_mut() };
    // Only the device target type has iterate_devices.
    match kind_ops(sys::wb_target_kind_WB_TARGET_DEVICE as CInt) {
        Some(o) => (o.backing)(&t),
        None => core::ptr::null_mut(),
    }
}

/// Parses the attribute name passed by C.
///
/// # Safety
///
/// `attr` must be a valid NUL-terminated string for `'a`.
unsafe fn attr_name<'a>(attr: *const kernel::ffi::c_char) -> Option<&'a str> {
    if attr.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_char_ptr(attr) }.to_str().ok()
}

fn sysfs_kind(kind: CInt) -> Option<SysfsKind> {
    match kind as u32 {
        sys::wb_sysfs_kind_WB_SYSFS_DEVICE => Some(SysfsKind::Device),
        sys::wb_sysfs_kind_WB_SYSFS_CACHE => Some(SysfsKind::Cache),
        _ => None,
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_sysfs_show(kind: CInt, id: u32, attr: *const kernel::ffi::c_char, buf: *mut kernel::ffi::c_char) -> kernel::ffi::c_long {
    // SAFETY: sysfs passes a valid attribute name.
    let name = unsafe { attr_name(attr) };
    // SAFETY: sysfs passes a PAGE_SIZE buffer.
    let mut out = unsafe { Out::from_raw(buf, 4096) };
    let (Some(name), Some(kind), Ok(id)) = (name, sysfs_kind(kind), u8::try_from(id)) else {
        return EINVAL.to_errno() as _;
    };
    let Some(d) = DISPATCH.get() else { return ENODEV.to_errno() as _ };
    match (d.show)(kind, id, name, &mut out) {
        Ok(()) => out.len() as _,
        Err(e) => e.to_errno() as _,
    }
}

#[no_mangle]
unsafe extern "C" fn wbrs_sysfs_store(
    kind: CInt,
    id: u32,
    attr: *const kernel::ffi::c_char,
    buf: *const kernel::ffi::c_char,
    len: kernel::ffi::c_ulong,
) -> kernel::ffi::c_long {
    // SAFETY: sysfs passes the attribute name and `len` bytes of input.
    let name = unsafe { attr_name(attr) };
    let input = if buf.is_null() {
        &[][..]
    } else {
        // SAFETY: `len` readable bytes at `buf`.
        unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len as usize) }
    };
    let (Some(name), Some(kind), Ok(id)) = (name, sysfs_kind(kind), u8::try_from(id)) else {
        return EINVAL.to_errno() as _;
    };
    let Some(d) = DISPATCH.get() else { return ENODEV.to_errno() as _ };
    match (d.store)(kind, id, name, input) {
        Ok(()) => len as _,
        Err(e) => e.to_errno() as _,
    }
}

// Compile-time proof that each entry point matches its typedef in wb_shim.h.
const _: sys::wbrs_ctr_fn = Some(wbrs_ctr);
const _: sys::wbrs_dtr_fn = Some(wbrs_dtr);
const _: sys::wbrs_map_fn = Some(wbrs_map);
const _: sys::wbrs_status_fn = Some(wbrs_status);
const _: sys::wbrs_message_fn = Some(wbrs_message);
const _: sys::wbrs_postsuspend_fn = Some(wbrs_postsuspend);
const _: sys::wbrs_preresume_fn = Some(wbrs_preresume);
const _: sys::wbrs_backing_fn = Some(wbrs_backing);
const _: sys::wbrs_sysfs_show_fn = Some(wbrs_sysfs_show);
const _: sys::wbrs_sysfs_store_fn = Some(wbrs_sysfs_store);

// ---------------------------------------------------------------------------
// Module-global state
// ---------------------------------------------------------------------------

/// A module-global object reached from C callbacks, installed by module init
/// and removed by module exit.
///
/// # Invariants
///
/// `ptr` is null or a `KBox<T>` foreign pointer installed by
/// [`Global::install`] and not yet reclaimed by its [`GlobalGuard`].
pub(crate) struct Global<T: Send + Sync + 'static> {
    ptr: core::sync::atomic::AtomicPtr<T>,
}

// SAFETY: the pointee is `Send + Sync`; the pointer is published atomically.
unsafe impl<T: Send + Sync> Sync for Global<T> {}

impl<T: Send + Sync + 'static> Global<T> {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        Self { ptr: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// Installs `value`; it is freed when the returned guard is dropped.
    pub(crate) fn install(&'static self, value: Pin<KBox<T>>) -> GlobalGuard<T> {
        // SAFETY: the value is never moved out of its box: the guard
        // reclaims it as a `Pin<KBox<T>>` and only shared references are
        // handed out.
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(value) });
        self.ptr.store(raw, core::sync::atomic::Ordering::Release);
        GlobalGuard { slot: self }
    }

    /// The installed value. Module-global objects are only used from
    /// callbacks of this module's targets, sysfs nodes and threads, all of
    /// which exist strictly between install and the guard's drop.
    pub(crate) fn get(&self) -> Option<&T> {
        let p = self.ptr.load(core::sync::atomic::Ordering::Acquire);
        // Callers run while the module is live: the guard is dropped at module
        // exit, after every target, sysfs node and thread of this module.
        // SAFETY: non-null means installed and not yet reclaimed (invariant).
        unsafe { p.as_ref() }
    }
}

/// Removes and frees a [`Global`]'s value when dropped.
pub(crate) struct GlobalGuard<T: Send + Sync + 'static> {
    slot: &'static Global<T>,
}

impl<T: Send + Sync + 'static> Drop for GlobalGuard<T> {
    fn drop(&mut self) {
        let p = self.slot.ptr.swap(core::ptr::null_mut(), core::sync::atomic::Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: `p` came from `KBox::into_raw` in `install` and is
            // reclaimed once (the swap cleared the slot).
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}
