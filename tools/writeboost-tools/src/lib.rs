//! Shared code of the offline writeboost tools (`writeboost-dump`,
//! `writeboost-check`, `writeboost-recover`, and later ones in `src/bin/`).
//!
//! - [`device`]: read-only access to a cache device or image file;
//! - [`blockdev`]: exclusive read-write access to a disk, and the backing
//!   identity of a block device as the kernel computes it;
//! - [`recover`]: `writeboost-recover`, the kernel's resume and write-back
//!   run from userland;
//! - [`inspect`]: what the tools report, computed with `wbformat` exactly as
//!   the kernel's recovery computes it;
//! - [`image`]: builds cache image files (formatted, with segments, optionally
//!   corrupted) for tests and experiments.

pub mod blockdev;
pub mod device;
pub mod image;
pub mod inspect;
pub mod recover;

pub use wbformat;

use wbformat::format::{SegmentSum, Superblock};

/// An xxh64 with seed 0 of the concatenation of `pieces` (the
/// `xxhash-rust` crate's), for [`SegmentSum::Xxh64`].
pub fn xxh64_pieces(pieces: [&[u8]; 4]) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for p in pieces {
        h.update(p);
    }
    h.digest()
}

/// How the segments of the cache of `sb` are checksummed (CRC32C for
/// superblock versions 2 and 3, xxh64 for version 4), with the tools'
/// implementations.
pub fn segment_sum(sb: &Superblock) -> SegmentSum {
    sb.segment_sum(wbformat::crc32c::crc32c_raw_update, xxh64_pieces)
}

/// Writes `text` to standard output. A closed pipe (`| head`) is not an
/// error; nothing here panics on it, unlike `println!`.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Reports an error that stops tool `tool` before its report: the message on
/// standard error and, with `json`, a JSON object on standard output (what
/// scripts parse): `{"<key>": <path>, "outcome": "error", "error": <message>}`
/// (`key` is the report's name for the device: `cache` or `device`). Gives
/// exit status 2.
pub fn fail(tool: &str, key: &str, path: &std::path::Path, msg: &str, json: bool) -> std::process::ExitCode {
    eprintln!("{tool}: {msg}");
    if json {
        let mut m = serde_json::Map::new();
        m.insert(key.to_string(), path.display().to_string().into());
        m.insert("outcome".into(), "error".into());
        m.insert("error".into(), msg.into());
        let _ = emit(&(serde_json::to_string_pretty(&m).unwrap_or_default() + "\n"));
    }
    std::process::ExitCode::from(2)
}

/// Parses tool `tool`'s command line as clap does, except that a usage
/// error (an unknown flag, a bad value) given with `--json` also prints
/// `{"outcome": "error", "error": <message>}` on standard output, as
/// [`fail`] does for the errors after parsing. `Err`: exit status 2
/// (clap's message is on standard error). `--help` and `--version` print
/// and exit as usual.
pub fn parse_args<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    let e = match T::try_parse() {
        Ok(a) => return Ok(a),
        Err(e) => e,
    };
    if !e.use_stderr() {
        e.exit();
    }
    let _ = e.print();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let json = args.iter().any(|a| a.to_str().is_some_and(|a| a == "--json" || a.starts_with("--json=")));
    // `-q`/`--quiet` (writeboost-check) prints nothing on stdout.
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    if json && !quiet {
        // clap's message up to its first blank line (the usage follows),
        // on one line.
        let text = e.to_string();
        let msg: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
        let msg = msg.join(" ");
        let mut m = serde_json::Map::new();
        m.insert("outcome".into(), "error".into());
        m.insert("error".into(), msg.strip_prefix("error: ").unwrap_or(&msg).into());
        let _ = emit(&(serde_json::to_string_pretty(&m).unwrap_or_default() + "\n"));
    }
    Err(std::process::ExitCode::from(2))
}

/// Whether standard error is a terminal that can redraw a progress bar in
/// place: not a pipe or file, not `TERM=dumb`, and not a serial or system
/// console (whose output usually ends up in a log).
pub fn fancy_terminal() -> bool {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return false;
    }
    if std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb") {
        return false;
    }
    let tty = std::fs::read_link("/proc/self/fd/2").unwrap_or_default();
    let tty = tty.to_string_lossy();
    !(tty == "/dev/console" || tty.starts_with("/dev/ttyS") || tty.starts_with("/dev/ttyAMA") || tty.starts_with("/dev/hvc"))
}

/// A size in sectors, readable (`1.0 GiB`).
pub fn human_size(sectors: u64) -> String {
    let bytes = sectors as f64 * 512.0;
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}
