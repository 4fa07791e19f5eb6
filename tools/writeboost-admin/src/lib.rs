//! The shared code of the writeboost admin tools (`writeboost-create`,
//! `-format-cache`, `-resume-cache`, `-attach`, `-detach`, `-remove`,
//! `-free-cache`, `-status` and `-daemon`).
//!
//! * [`dm`]: device-mapper through its ioctls (the `devicemapper` crate),
//!   errors as values carrying the kernel's message;
//! * [`kmsg`]: the kernel's one-line explanation of a refusal;
//! * [`sysfs`], [`topology`], [`status`]: what exists and its state;
//! * [`lock`]: serialising concurrent tool runs (the manager's cache pointer);
//! * [`state`]: which backing disk had which cache, across boots;
//! * [`ops`]: the commands themselves;
//! * [`daemon`], [`diskstats`]: the migration daemon's logic.

pub mod blockdev;
pub mod cli;
pub mod daemon;
pub mod diskstats;
pub mod dm;
pub mod error;
pub mod kmsg;
pub mod lock;
pub mod ops;
pub mod progress;
pub mod report;
pub mod signals;
pub mod state;
pub mod status;
pub mod sysfs;
pub mod topology;
pub mod validate;

pub use error::{Error, Result};
