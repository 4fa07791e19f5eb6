//! Checks of command-line values, done before anything touches the kernel.

use crate::error::{Error, Result};

/// Highest device or cache id.
pub const MAX_ID: u8 = 127;

/// Parses a device id (1..=127) for clap.
pub fn device_id(s: &str) -> std::result::Result<u8, String> {
    id(s, "device id")
}

/// Parses a cache id (1..=127) for clap.
pub fn cache_id(s: &str) -> std::result::Result<u8, String> {
    id(s, "cache id")
}

fn id(s: &str, what: &str) -> std::result::Result<u8, String> {
    match s.parse::<u64>() {
        Ok(v) if (1..=u64::from(MAX_ID)).contains(&v) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(v as u8),
        _ => Err(format!("'{}' is not a valid {}: it must be a number from 1 to {}", s, what, MAX_ID)),
    }
}

/// Parses a percentage (0..=100) for clap.
pub fn percent(s: &str) -> std::result::Result<u8, String> {
    match s.parse::<u8>() {
        Ok(v) if v <= 100 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => Err(format!("'{}' is not a percentage from 0 to 100", s)),
    }
}

/// Checks a name for a new device-mapper device: 1..=127 bytes of
/// letters, digits and `._-+:@#`, not `.`, `..` or `control` (the kernel
/// refuses those), and not the manager's.
pub fn device_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("invalid device name '{}': {}", name, why)));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 127 {
        return bad("it is longer than 127 bytes");
    }
    if name == "." || name == ".." || name == "control" {
        return bad("it must not be '.', '..' or 'control' (/dev/mapper/control is device-mapper's own)");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-+:@#".contains(*c))) {
        return bad(&format!("'{}' is not allowed (use letters, digits and ._-+:@#)", c.escape_default()));
    }
    if name == crate::dm::MGR_NAME {
        return bad("that is the manager's name");
    }
    Ok(())
}

/// Checks that a path can be passed to the kernel in a message or table
/// (they are split at whitespace).
pub fn kernel_path(path: &std::path::Path) -> Result<&str> {
    let s = path.to_str().ok_or_else(|| Error::invalid(format!("{}: the path is not valid UTF-8", path.display())))?;
    if s.chars().any(char::is_whitespace) {
        return Err(Error::invalid(format!("'{}': a path with whitespace cannot be passed to the kernel", s)));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(device_id("1"), Ok(1));
        assert_eq!(device_id("127"), Ok(127));
        for bad in ["0", "128", "-1", "+5", "", "x", "1.0", " 3", "99999999999999999999999"] {
            assert!(device_id(bad).is_err(), "{bad}");
        }
        assert_eq!(cache_id("0").unwrap_err(), "'0' is not a valid cache id: it must be a number from 1 to 127");
    }

    #[test]
    fn percents() {
        assert_eq!(percent("0"), Ok(0));
        assert_eq!(percent("100"), Ok(100));
        assert!(percent("101").is_err());
        assert!(percent("-1").is_err());
        assert!(percent("+1").is_err());
    }

    #[test]
    fn names() {
        for ok in ["wb1", "my_LV-2", "a.b", "x+y:z@w#1"] {
            device_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "control", "a/b", "a b", "tab\t", "writeboost-mgr", "é"] {
            let e = device_name(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        assert!(device_name(&"x".repeat(127)).is_ok());
        assert!(device_name(&"x".repeat(128)).is_err());
    }

    #[test]
    fn kernel_paths() {
        assert_eq!(kernel_path(std::path::Path::new("/dev/vdb")).unwrap(), "/dev/vdb");
        assert!(kernel_path(std::path::Path::new("/dev/my disk")).is_err());
    }
}
