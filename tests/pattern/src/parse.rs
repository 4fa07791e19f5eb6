//! Parsing of command-line values: regions, byte sizes, size lists and
//! the --initial policy.

use crate::check::Initial;
use crate::stream::{Region, MAX_IO_BYTES};

/// Parse a number with an optional binary suffix K, M, G, T (optionally
/// followed by "iB" or "B"). Returns the value (multiplied) and whether a
/// suffix was present.
fn parse_num(s: &str) -> Result<(u64, bool), String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("'{s}' is not a number"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}': number too large"))?;
    let shift = match suffix {
        "" => return Ok((n, false)),
        "k" | "K" | "KiB" | "KB" => 10,
        "m" | "M" | "MiB" | "MB" => 20,
        "g" | "G" | "GiB" | "GB" => 30,
        "t" | "T" | "TiB" | "TB" => 40,
        _ => {
            return Err(format!(
                "'{s}': unknown suffix '{suffix}' (use K, M, G or T for KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let v = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{s}': number too large"))?;
    Ok((v, true))
}

/// A byte count: plain number = bytes, suffixes K/M/G/T allowed.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_num(s).map(|(v, _)| v)
}

/// A sector count: plain number = 512-byte sectors; with a suffix it is a
/// byte count that must be a multiple of 512.
pub fn parse_sectors(s: &str) -> Result<u64, String> {
    let (v, suffixed) = parse_num(s)?;
    if !suffixed {
        return Ok(v);
    }
    if !v.is_multiple_of(512) {
        return Err(format!("'{s}' is not a multiple of 512 bytes"));
    }
    Ok(v / 512)
}

/// `START:LEN`, each in sectors or with a byte suffix.
pub fn parse_region(s: &str) -> Result<Region, String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("region '{s}' must be START:LEN (e.g. 0:8M or 2048:16384)"))?;
    let start = parse_sectors(a)?;
    let len = parse_sectors(b)?;
    if len == 0 {
        return Err(format!("region '{s}' has zero length"));
    }
    if start.checked_add(len).is_none_or(|e| e > u64::MAX / 512) {
        return Err(format!("region '{s}' is too large"));
    }
    Ok(Region { start, len })
}

/// A parsed --sizes list (a newtype, so clap treats it as one value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeList(pub Vec<u64>);

/// `--sizes`: see [`parse_sizes`].
pub fn parse_size_list(s: &str) -> Result<SizeList, String> {
    parse_sizes(s).map(SizeList)
}

/// A comma-separated list of I/O sizes in bytes (suffixes allowed), each a
/// non-zero multiple of 512.
pub fn parse_sizes(s: &str) -> Result<Vec<u64>, String> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("size list '{s}' has an empty entry"));
        }
        let b = parse_bytes(part)?;
        if b == 0 || !b.is_multiple_of(512) {
            return Err(format!(
                "I/O size '{part}' must be a non-zero multiple of 512 bytes"
            ));
        }
        if b > MAX_IO_BYTES {
            return Err(format!("I/O size '{part}' is larger than the 1 GiB limit"));
        }
        v.push(b);
    }
    Ok(v)
}

/// A non-zero alignment in bytes, multiple of 512.
pub fn parse_align(s: &str) -> Result<u64, String> {
    let b = parse_bytes(s)?;
    if b == 0 || !b.is_multiple_of(512) {
        return Err(format!(
            "alignment '{s}' must be a non-zero multiple of 512 bytes"
        ));
    }
    Ok(b)
}

/// `zero`, `any` or `gen:G`.
pub fn parse_initial(s: &str) -> Result<Initial, String> {
    match s {
        "zero" | "zeros" => Ok(Initial::Zero),
        "any" => Ok(Initial::Any),
        _ => {
            let g = s
                .strip_prefix("gen:")
                .ok_or_else(|| format!("--initial '{s}' must be zero, any or gen:G"))?;
            let g: u64 = g
                .trim()
                .parse()
                .map_err(|_| format!("--initial '{s}': G must be a number"))?;
            if g == 0 {
                return Err("--initial gen:0: generation 0 is reserved".to_string());
            }
            Ok(Initial::Gen(g))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        assert_eq!(
            parse_region("0:8M").unwrap(),
            Region {
                start: 0,
                len: 16384
            }
        );
        assert_eq!(
            parse_region("2048:100").unwrap(),
            Region {
                start: 2048,
                len: 100
            }
        );
        assert_eq!(
            parse_region("1M:64K").unwrap(),
            Region {
                start: 2048,
                len: 128
            }
        );
        assert_eq!(
            parse_region("1G:1MiB").unwrap(),
            Region {
                start: 2 << 20,
                len: 2048
            }
        );
        assert!(parse_region("0").is_err());
        assert!(parse_region("0:0").is_err());
        assert!(parse_region("0:1000B").is_err());
        assert!(parse_region("x:1").is_err());
        assert!(parse_region("1:2X").is_err());
        assert!(parse_region(":1").is_err());
        assert!(parse_region("18446744073709551615:1").is_err());
        assert!(parse_region("99999999999999999999:1").is_err());
        assert!(parse_region("1:99999999999T").is_err());
    }

    #[test]
    fn sizes_and_align() {
        assert_eq!(
            parse_sizes("512,4K, 64K,1M").unwrap(),
            vec![512, 4096, 65536, 1 << 20]
        );
        assert!(parse_sizes("512,").is_err());
        assert!(parse_sizes("1000").is_err());
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("2G").is_err());
        assert_eq!(parse_align("4K").unwrap(), 4096);
        assert!(parse_align("100").is_err());
        assert!(parse_align("0").is_err());
    }

    #[test]
    fn initial() {
        assert_eq!(parse_initial("zero").unwrap(), Initial::Zero);
        assert_eq!(parse_initial("any").unwrap(), Initial::Any);
        assert_eq!(parse_initial("gen:77").unwrap(), Initial::Gen(77));
        assert!(parse_initial("gen:0").is_err());
        assert!(parse_initial("gen:x").is_err());
        assert!(parse_initial("foo").is_err());
    }
}
