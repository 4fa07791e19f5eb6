//! wbpattern: deterministic, self-verifying write patterns for data
//! verification tests of a block-device cache.
//!
//! See `wbpattern --help` (text in `cli.rs`) for the content model, the op
//! stream and the commands.

pub mod check;
pub mod cli;
pub mod crc32;
pub mod dev;
pub mod parse;
pub mod stamp;
pub mod stream;
pub mod write;
