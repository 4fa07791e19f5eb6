//! Ctrl-C and termination: a flag the tools check at safe points.
//!
//! SIGINT, SIGTERM and SIGHUP only set the flag; a tool that sees it stops
//! at the next point where it can leave things consistent (for detach: the
//! device stays attached, its tunables restored) and says so.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The interruption flag.
#[derive(Clone, Debug)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP.
    pub fn install() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
            // Registration only fails for forbidden signals; these are not.
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        Interrupt { flag }
    }

    /// A flag no signal sets (tests, or set by hand).
    pub fn new_unregistered() -> Self {
        Interrupt { flag: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether a signal arrived.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sets the flag.
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst)
    }

    /// Sleeps for `d`, returning early (false) when interrupted.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_returns_early_when_set() {
        let i = Interrupt::new_unregistered();
        assert!(i.sleep(Duration::from_millis(10)));
        i.set();
        let t = Instant::now();
        assert!(!i.sleep(Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
