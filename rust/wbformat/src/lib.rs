//! `wbformat`: the writeboost on-disk format (format v1), CRC32C, the
//! metablock index and the recovery logic.
//!
//! The crate is `no_std`, never allocates and never panics outside tests. Its
//! module files are compiled as-is by the kernel module (which pulls them in
//! with `#[path]`), so they refer to each other only through `super::` and
//! carry no inner attributes; this file is the host-side crate root only.
//! The format is described in `Documentation/on-disk-format.md`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod compat;
pub mod crc32c;
pub mod engine;
pub mod format;
pub mod index;
pub mod recovery;
