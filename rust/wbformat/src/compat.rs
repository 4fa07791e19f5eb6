//! The dm-writeboost 2.2 table form: which form a table uses, its optional
//! arguments, its messages and its status line.
//!
//! Pure logic, shared by the kernel module (`rust/device22.rs`) and tested
//! on the host. See `Documentation/admin-guide.md`, "Coming from
//! dm-writeboost 2.2".
//!
//! # Which form
//!
//! A table whose first argument names a device, a path (`/dev/sdb`, it has
//! a `/`) or a device number (`8:16`, it has a `:`), is the 2.2 form
//! `<backing path> <cache path> [<#opt args> <key> <value> ...]`. Anything
//! else is the 2013 form `<device_id> <backing path> <cache_id>` (three
//! arguments, a number first), whose errors stay as they were (`x` is an
//! invalid device_id, not a 2.2 backing device).

use core::fmt;

/// Whether a table whose first argument is `first` is the 2.2 form (see
/// the module documentation): that argument has a `/` or a `:`.
pub fn is_22_form(first: Option<&str>) -> bool {
    first.is_some_and(|s| s.contains('/') || s.contains(':'))
}

/// The device number (the kernel's `dev_t`: major << 20 | minor) named by
/// `s` when it is `major:minor` in decimal, as `dm_get_device` accepts for a
/// table's devices (and as `dmsetup table` prints them); `None` otherwise
/// (then `s` is a path).
pub fn parse_maj_min(s: &str) -> Option<u32> {
    let (ma, mi) = s.split_once(':')?;
    let (ma, mi) = (dec_u32(ma)?, dec_u32(mi)?);
    (ma < 1 << 12 && mi < 1 << 20).then_some(ma << 20 | mi)
}

/// An optional argument of the 2.2 form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Percent utilisation of the backing device above which background
    /// write-back pauses (0: background write-back off).
    WritebackThreshold,
    /// Segments written back per round.
    NrMaxBatchedWriteback,
    /// Seconds between writes of the on-disk record (0: off).
    UpdateSbRecordInterval,
    /// Seconds between flushes of the RAM buffer and the cache device (0: off).
    SyncDataInterval,
    /// Read caching (0: off; N > 0: cache 4 KiB read misses, except runs of
    /// more than N consecutive blocks). Needs a cache formatted with
    /// superblock version 4.
    ReadCacheThreshold,
    /// Write-around (0: off; 1: writes go to the backing device, cached
    /// copies are dropped). Fixed at construction.
    WriteAroundMode,
    /// Read-cache cells. Fixed at construction.
    NrReadCacheCells,
}

/// Every key, in the order the status line and the documentation use.
pub const KEYS: [Key; 7] = [
    Key::WritebackThreshold,
    Key::NrMaxBatchedWriteback,
    Key::UpdateSbRecordInterval,
    Key::SyncDataInterval,
    Key::ReadCacheThreshold,
    Key::WriteAroundMode,
    Key::NrReadCacheCells,
];

impl Key {
    /// The key's name (lower case).
    pub fn name(self) -> &'static str {
        match self {
            Key::WritebackThreshold => "writeback_threshold",
            Key::NrMaxBatchedWriteback => "nr_max_batched_writeback",
            Key::UpdateSbRecordInterval => "update_sb_record_interval",
            Key::SyncDataInterval => "sync_data_interval",
            Key::ReadCacheThreshold => "read_cache_threshold",
            Key::WriteAroundMode => "write_around_mode",
            Key::NrReadCacheCells => "nr_read_cache_cells",
        }
    }

    /// The accepted range of the key's value.
    pub fn range(self) -> (u32, u32) {
        match self {
            Key::WritebackThreshold => (0, 100),
            Key::NrMaxBatchedWriteback => (1, 32),
            Key::UpdateSbRecordInterval => (0, 3600),
            Key::SyncDataInterval => (0, 3600),
            Key::ReadCacheThreshold => (0, 127),
            Key::WriteAroundMode => (0, 1),
            Key::NrReadCacheCells => (1, 2048),
        }
    }

    /// Whether a message may change the key on a live device.
    pub fn dynamic(self) -> bool {
        !matches!(self, Key::WriteAroundMode | Key::NrReadCacheCells)
    }

    /// The key named `s` (case-insensitive).
    pub fn from_name(s: &str) -> Option<Key> {
        KEYS.iter().copied().find(|k| k.name().eq_ignore_ascii_case(s))
    }

    fn index(self) -> usize {
        KEYS.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// Why an optional argument or a message is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptError<'a> {
    /// The `<#opt args>` count is not a number.
    BadCount(&'a str),
    /// The count is odd or above 14.
    CountRange(u32),
    /// The count does not match the arguments that follow.
    CountMismatch {
        /// The count given.
        count: u32,
        /// Arguments after the count.
        present: usize,
    },
    /// Not a known key.
    UnknownKey(&'a str),
    /// A key appears twice.
    Duplicate(Key),
    /// A value that is not a decimal number in the key's range.
    BadValue(Key, &'a str),
    /// A value this implementation does not support yet.
    Unsupported(Key, u32),
    /// A message tried to change a key fixed at construction.
    Fixed(Key),
    /// An unknown or malformed message.
    BadMessage(&'a str),
    /// A message that takes no argument was given some.
    NoArgs(&'a str),
}

impl fmt::Display for OptError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OptError::BadCount(s) => write!(f, "invalid <#opt args> '{}': must be an even number in 0..14", s),
            OptError::CountRange(n) => write!(f, "invalid <#opt args> {}: must be an even number in 0..14", n),
            OptError::CountMismatch { count, present } => {
                write!(f, "<#opt args> is {} but {} arguments follow it", count, present)
            }
            OptError::UnknownKey(s) => write!(
                f,
                "unknown optional argument '{}' (known: writeback_threshold, nr_max_batched_writeback, update_sb_record_interval, sync_data_interval, read_cache_threshold, write_around_mode, nr_read_cache_cells)",
                s
            ),
            OptError::Duplicate(k) => write!(f, "optional argument {} given twice", k.name()),
            OptError::BadValue(k, s) => {
                let (lo, hi) = k.range();
                write!(f, "invalid {} '{}': must be a number in {}..{}", k.name(), s, lo, hi)
            }
            OptError::Unsupported(k, v) => write!(f, "{} {}: not supported yet (only 0)", k.name(), v),
            OptError::Fixed(k) => write!(f, "{} is fixed when the table is loaded; load a new table to change it", k.name()),
            OptError::NoArgs(s) => write!(f, "{} takes no argument", s),
            OptError::BadMessage(s) => write!(
                f,
                "unknown message '{}' (known: clear_stat, drop_caches, <key> <value> for writeback_threshold, nr_max_batched_writeback, update_sb_record_interval, sync_data_interval, read_cache_threshold)",
                s
            ),
        }
    }
}

/// Parses a plain decimal `u32` (no sign, no spaces, no overflow).
pub fn dec_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, c| acc.checked_mul(10)?.checked_add(u32::from(c - b'0')))
}

/// Validates `value` for `key`.
pub fn check_value(key: Key, value: &str) -> Result<u32, OptError<'_>> {
    let (lo, hi) = key.range();
    let v = dec_u32(value).filter(|v| (lo..=hi).contains(v)).ok_or(OptError::BadValue(key, value))?;
    match key {
        _ => Ok(v),
    }
}

/// The optional arguments of a 2.2 table: every value, and which were
/// given, in the order given (so the table line shows them as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    values: [u32; 7],
    given: [Option<Key>; 7],
    nr_given: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// The defaults (those of dm-writeboost 2.2).
    pub const fn new() -> Self {
        Self { values: [0, 32, 0, 0, 0, 0, 2048], given: [None; 7], nr_given: 0 }
    }

    /// The value of `key`.
    pub fn get(&self, key: Key) -> u32 {
        self.values.get(key.index()).copied().unwrap_or(0)
    }

    /// The keys given in the table, in order.
    pub fn given(&self) -> impl Iterator<Item = Key> + '_ {
        self.given.iter().take(self.nr_given).flatten().copied()
    }

    /// Parses `<#opt args> <key> <value> ...` (`args` is everything after
    /// the two paths; empty means no optional arguments).
    pub fn parse<'a>(args: &[&'a str]) -> Result<Options, OptError<'a>> {
        let mut o = Options::new();
        let Some((&count_s, rest)) = args.split_first() else { return Ok(o) };
        let count = dec_u32(count_s).ok_or(OptError::BadCount(count_s))?;
        if count % 2 != 0 || count > 14 {
            return Err(OptError::CountRange(count));
        }
        if rest.len() != count as usize {
            return Err(OptError::CountMismatch { count, present: rest.len() });
        }
        for pair in rest.chunks(2) {
            let (&k, &v) = match pair {
                [k, v] => (k, v),
                _ => return Err(OptError::CountMismatch { count, present: rest.len() }),
            };
            let key = Key::from_name(k).ok_or(OptError::UnknownKey(k))?;
            if o.given().any(|g| g == key) {
                return Err(OptError::Duplicate(key));
            }
            let val = check_value(key, v)?;
            o.set(key, val);
            if let Some(slot) = o.given.get_mut(o.nr_given) {
                *slot = Some(key);
                o.nr_given += 1;
            }
        }
        Ok(o)
    }

    /// Sets `key` (a message, or the parser).
    pub fn set(&mut self, key: Key, v: u32) {
        if let Some(x) = self.values.get_mut(key.index()) {
            *x = v;
        }
    }

    /// Writes ` <#opt args> <key> <value>...` for the keys given (nothing
    /// when none was), with their values at construction.
    pub fn write_table(&self, out: &mut impl fmt::Write) -> fmt::Result {
        if self.nr_given == 0 {
            return Ok(());
        }
        write!(out, " {}", self.nr_given * 2)?;
        for k in self.given() {
            write!(out, " {} {}", k.name(), self.get(k))?;
        }
        Ok(())
    }
}

/// A message to a 2.2 device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// Zero the hit/miss counters and the partial-flush count.
    ClearStat,
    /// Write everything back, the RAM buffer included.
    DropCaches,
    /// Change a dynamic key.
    Set(Key, u32),
}

/// Parses a message (`args` as given to `dmsetup message`).
pub fn parse_message<'a>(args: &[&'a str]) -> Result<Message, OptError<'a>> {
    match args {
        [m] if m.eq_ignore_ascii_case("clear_stat") => Ok(Message::ClearStat),
        [m] if m.eq_ignore_ascii_case("drop_caches") => Ok(Message::DropCaches),
        [m, ..] if m.eq_ignore_ascii_case("clear_stat") || m.eq_ignore_ascii_case("drop_caches") => Err(OptError::NoArgs(m)),
        [k, v] => {
            let key = Key::from_name(k).ok_or(OptError::BadMessage(k))?;
            if !key.dynamic() {
                return Err(OptError::Fixed(key));
            }
            Ok(Message::Set(key, check_value(key, v)?))
        }
        [m, ..] => Err(OptError::BadMessage(m)),
        [] => Err(OptError::BadMessage("")),
    }
}

/// The figures of a 2.2 status line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Global index of the line allocated last.
    pub cursor: u64,
    /// Lines of the cache.
    pub nr_cache_lines: u64,
    /// Segments of the cache.
    pub nr_segments: u64,
    /// Id of the open segment.
    pub current_id: u64,
    /// Last segment written to the cache device.
    pub last_flushed_id: u64,
    /// Last segment written back.
    pub last_writeback_id: u64,
    /// Dirty lines.
    pub nr_dirty: u64,
    /// The engine's 16 counters, indexed `write | hit << 1 | on_buffer << 2
    /// | fullsize << 3`.
    pub engine_stats: [u64; 16],
    /// Partial segments sealed.
    pub nr_partial_flushed: u64,
    /// writeback_threshold.
    pub writeback_threshold: u32,
    /// The batch the next write-back round may take.
    pub nr_cur_batched_writeback: u32,
    /// sync_data_interval.
    pub sync_data_interval: u32,
    /// update_sb_record_interval.
    pub update_sb_record_interval: u32,
    /// read_cache_threshold.
    pub read_cache_threshold: u32,
}

/// The 2.2 index (`write << 3 | hit << 2 | on_buffer << 1 | fullsize`) of
/// the engine's counter `i` (`write | hit << 1 | on_buffer << 2 | fullsize
/// << 3`): the four bits reversed.
pub fn stat_index_22(i: usize) -> usize {
    ((i & 1) << 3) | (((i >> 1) & 1) << 2) | (((i >> 2) & 1) << 1) | ((i >> 3) & 1)
}

impl Status {
    /// The counters in 2.2 order.
    pub fn stats_22(&self) -> [u64; 16] {
        let mut r = [0u64; 16];
        for (i, &v) in self.engine_stats.iter().enumerate() {
            if let Some(x) = r.get_mut(stat_index_22(i)) {
                *x = v;
            }
        }
        r
    }

    /// Writes the status line: integers separated by single spaces.
    pub fn write(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(
            out,
            "{} {} {} {} {} {} {}",
            self.cursor,
            self.nr_cache_lines,
            self.nr_segments,
            self.current_id,
            self.last_flushed_id,
            self.last_writeback_id,
            self.nr_dirty
        )?;
        for v in self.stats_22() {
            write!(out, " {}", v)?;
        }
        write!(
            out,
            " {} 10 writeback_threshold {} nr_cur_batched_writeback {} sync_data_interval {} update_sb_record_interval {} read_cache_threshold {}",
            self.nr_partial_flushed,
            self.writeback_threshold,
            self.nr_cur_batched_writeback,
            self.sync_data_interval,
            self.update_sb_record_interval,
            self.read_cache_threshold
        )
    }
}

/// Background write-back from the backing device's load: allowed when the
/// threshold is not 0 and the backing device was busy less than
/// `threshold` percent of the last `elapsed_ms` (`busy_ms` of I/O ticks).
pub fn writeback_allowed(threshold: u32, busy_ms: u64, elapsed_ms: u64) -> bool {
    if threshold == 0 {
        return false;
    }
    if elapsed_ms == 0 {
        return true;
    }
    // busy / elapsed < threshold / 100, without division.
    busy_ms.saturating_mul(100) < u64::from(threshold).saturating_mul(elapsed_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn p(s: &str) -> Result<Options, OptError<'_>> {
        let v: Vec<&str> = s.split_whitespace().collect();
        Options::parse(&v)
    }

    #[test]
    fn form() {
        assert!(!is_22_form(Some("1")));
        assert!(!is_22_form(Some("127")));
        assert!(is_22_form(Some("/dev/sdb")));
        assert!(is_22_form(Some("8:16")));
        assert!(is_22_form(Some("./sdb")));
        // Not a device: the 2013 form, whose parser says what is wrong.
        assert!(!is_22_form(Some("")));
        assert!(!is_22_form(Some("x")));
        assert!(!is_22_form(Some("-1")));
        assert!(!is_22_form(None));
    }

    #[test]
    fn maj_min() {
        assert_eq!(parse_maj_min("8:16"), Some(8 << 20 | 16));
        assert_eq!(parse_maj_min("252:0"), Some(252 << 20));
        assert_eq!(parse_maj_min("4095:1048575"), Some(4095 << 20 | 1048575));
        for bad in ["/dev/sdb", "8", "8:", ":16", "8:16:1", "4096:0", "0:1048576", "-8:16", "8:x", "", "8 :16"] {
            assert_eq!(parse_maj_min(bad), None, "{}", bad);
        }
    }

    #[test]
    fn defaults_and_empty() {
        let o = p("").unwrap();
        assert_eq!(o, Options::new());
        assert_eq!(o.get(Key::NrMaxBatchedWriteback), 32);
        assert_eq!(o.get(Key::NrReadCacheCells), 2048);
        let o = p("0").unwrap();
        assert_eq!(o.given().count(), 0);
        let mut s = String::new();
        o.write_table(&mut s).unwrap();
        assert_eq!(s, "");
    }

    /// Every accepted value at both ends of its range, in every key order
    /// (rotations of all seven keys plus reversed), round-trips through the
    /// table line.
    #[test]
    fn all_keys_any_order_any_case() {
        let vals = |k: Key, hi: bool| {
            let (lo, h) = k.range();
            match k {
                Key::ReadCacheThreshold | Key::WriteAroundMode => 0,
                _ => {
                    if hi {
                        h
                    } else {
                        lo
                    }
                }
            }
        };
        for hi in [false, true] {
            for rot in 0..7 {
                for rev in [false, true] {
                    let mut keys: Vec<Key> = KEYS.to_vec();
                    keys.rotate_left(rot);
                    if rev {
                        keys.reverse();
                    }
                    let mut line = std::format!("{}", keys.len() * 2);
                    for (i, k) in keys.iter().enumerate() {
                        let name = if i % 2 == 0 { k.name().to_uppercase() } else { String::from(k.name()) };
                        line += &std::format!(" {} {}", name, vals(*k, hi));
                    }
                    let o = p(&line).unwrap();
                    for k in KEYS {
                        assert_eq!(o.get(k), vals(k, hi), "{}", line);
                    }
                    assert_eq!(o.given().collect::<Vec<_>>(), keys);
                    let mut s = String::new();
                    o.write_table(&mut s).unwrap();
                    assert_eq!(s.trim_start(), line.to_lowercase());
                    // The printed table parses to the same options.
                    assert_eq!(p(&s).unwrap(), o);
                }
            }
        }
    }

    #[test]
    fn bad_counts() {
        assert_eq!(p("x"), Err(OptError::BadCount("x")));
        assert_eq!(p("-2 a b"), Err(OptError::BadCount("-2")));
        assert_eq!(p("1 writeback_threshold"), Err(OptError::CountRange(1)));
        assert_eq!(p("16"), Err(OptError::CountRange(16)));
        assert_eq!(p("2"), Err(OptError::CountMismatch { count: 2, present: 0 }));
        assert_eq!(p("2 writeback_threshold 1 sync_data_interval 2"), Err(OptError::CountMismatch { count: 2, present: 4 }));
    }

    #[test]
    fn bad_keys_and_values() {
        assert_eq!(p("2 foo 1"), Err(OptError::UnknownKey("foo")));
        assert_eq!(p("4 writeback_threshold 1 WRITEBACK_THRESHOLD 2"), Err(OptError::Duplicate(Key::WritebackThreshold)));
        for k in KEYS {
            let (lo, hi) = k.range();
            let mut bad: Vec<String> = std::vec![String::from("x"), String::from(""), String::from("-1"), String::from("+1"), String::from("0x1"), String::from("1 "), String::from("99999999999"), std::format!("{}", u64::from(hi) + 1)];
            if lo > 0 {
                bad.push(std::format!("{}", lo - 1));
            }
            for b in &bad {
                let args = ["2", k.name(), b.as_str()];
                assert_eq!(Options::parse(&args), Err(OptError::BadValue(k, b.as_str())), "{} {}", k.name(), b);
            }
        }
        assert_eq!(p("2 read_cache_threshold 1").map(|o| o.get(Key::ReadCacheThreshold)), Ok(1));
        assert_eq!(p("2 read_cache_threshold 127").map(|o| o.get(Key::ReadCacheThreshold)), Ok(127));
        assert!(p("2 read_cache_threshold 128").is_err());
        assert_eq!(p("4 read_cache_threshold 4 nr_read_cache_cells 16").map(|o| o.get(Key::NrReadCacheCells)), Ok(16));
        assert_eq!(p("2 write_around_mode 1").map(|o| o.get(Key::WriteAroundMode)), Ok(1));
        assert_eq!(p("2 write_around_mode 2"), Err(OptError::BadValue(Key::WriteAroundMode, "2")));
        // Every error has a message naming what is wrong.
        let e = p("2 nr_max_batched_writeback 33").unwrap_err();
        assert_eq!(std::format!("{}", e), "invalid nr_max_batched_writeback '33': must be a number in 1..32");
    }

    #[test]
    fn messages() {
        assert_eq!(parse_message(&["clear_stat"]), Ok(Message::ClearStat));
        assert_eq!(parse_message(&["DROP_CACHES"]), Ok(Message::DropCaches));
        assert_eq!(parse_message(&["writeback_threshold", "70"]), Ok(Message::Set(Key::WritebackThreshold, 70)));
        assert_eq!(parse_message(&["Sync_Data_Interval", "3600"]), Ok(Message::Set(Key::SyncDataInterval, 3600)));
        assert_eq!(parse_message(&["update_sb_record_interval", "3601"]), Err(OptError::BadValue(Key::UpdateSbRecordInterval, "3601")));
        assert_eq!(parse_message(&["nr_max_batched_writeback", "0"]), Err(OptError::BadValue(Key::NrMaxBatchedWriteback, "0")));
        assert_eq!(parse_message(&["read_cache_threshold", "0"]), Ok(Message::Set(Key::ReadCacheThreshold, 0)));
        assert_eq!(parse_message(&["read_cache_threshold", "4"]), Ok(Message::Set(Key::ReadCacheThreshold, 4)));
        assert_eq!(parse_message(&["write_around_mode", "0"]), Err(OptError::Fixed(Key::WriteAroundMode)));
        assert_eq!(parse_message(&["nr_read_cache_cells", "1"]), Err(OptError::Fixed(Key::NrReadCacheCells)));
        assert_eq!(parse_message(&["clear_stat", "1"]), Err(OptError::NoArgs("clear_stat")));
        assert_eq!(parse_message(&["drop_caches", "1", "2"]), Err(OptError::NoArgs("drop_caches")));
        assert_eq!(parse_message(&["writeback_threshold", "1", "2"]), Err(OptError::BadMessage("writeback_threshold")));
        assert_eq!(parse_message(&["foo"]), Err(OptError::BadMessage("foo")));
        assert_eq!(parse_message(&["foo", "1"]), Err(OptError::BadMessage("foo")));
        assert_eq!(parse_message(&[]), Err(OptError::BadMessage("")));
    }

    #[test]
    fn stat_order() {
        // Engine index: write | hit << 1 | on_buffer << 2 | fullsize << 3.
        assert_eq!(stat_index_22(1), 8); // write
        assert_eq!(stat_index_22(2), 4); // hit
        assert_eq!(stat_index_22(4), 2); // on buffer
        assert_eq!(stat_index_22(8), 1); // fullsize
        assert_eq!(stat_index_22(1 | 8), 9); // full-size write miss
        let mut seen = [false; 16];
        for i in 0..16 {
            seen[stat_index_22(i)] = true;
        }
        assert!(seen.iter().all(|&x| x));
    }

    #[test]
    fn status_line() {
        let mut s = Status { cursor: 5, nr_cache_lines: 2040, nr_segments: 8, current_id: 3, last_flushed_id: 2, last_writeback_id: 1, nr_dirty: 4, ..Default::default() };
        for i in 0..16 {
            s.engine_stats[i] = 100 + i as u64;
        }
        s.nr_partial_flushed = 7;
        s.writeback_threshold = 70;
        s.nr_cur_batched_writeback = 32;
        s.sync_data_interval = 1;
        s.update_sb_record_interval = 2;
        let mut out = String::new();
        s.write(&mut out).unwrap();
        let f: Vec<&str> = out.split(' ').collect();
        assert_eq!(f.len(), 7 + 16 + 1 + 1 + 10);
        assert_eq!(&f[..7], &["5", "2040", "8", "3", "2", "1", "4"]);
        // 2.2 index 8 (write, miss, not on buffer, partial) is engine index 1.
        assert_eq!(f[7 + 8], "101");
        assert_eq!(f[7 + 9], "109");
        assert_eq!(f[7 + 1], "108");
        assert_eq!(f[23], "7");
        assert_eq!(&f[24..], &["10", "writeback_threshold", "70", "nr_cur_batched_writeback", "32", "sync_data_interval", "1", "update_sb_record_interval", "2", "read_cache_threshold", "0"]);
    }

    #[test]
    fn load_sensing() {
        assert!(!writeback_allowed(0, 0, 1000));
        assert!(writeback_allowed(70, 0, 1000));
        assert!(writeback_allowed(70, 699, 1000));
        assert!(!writeback_allowed(70, 700, 1000));
        assert!(!writeback_allowed(70, 1000, 1000));
        assert!(writeback_allowed(100, 999, 1000));
        assert!(!writeback_allowed(100, 1000, 1000));
        assert!(writeback_allowed(1, 0, 0));
    }
}
