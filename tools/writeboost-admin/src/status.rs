//! Parsing what device-mapper prints for writeboost targets.
//!
//! * `dmsetup table NAME`: `<start> <len> writeboost <device_id> <maj:min> <cache_id>`
//! * `dmsetup status NAME`: `<start> <len> writeboost cache_id <n> nr_dirty_caches <n>`
//! * the dm-writeboost 2.2 form (see `wbformat::compat`): table
//!   `<start> <len> writeboost <backing maj:min> <cache maj:min> [<#opt args>
//!   <key> <value>...]`, status one line of integers and five named tunables
//!   ([`Device22Table`], [`Device22Status`]).
//! * `dmsetup status writeboost-mgr`: `current cache_id_ptr: N`, then either
//!   the global structure sizes (N = 0) or the selected cache's state and
//!   its 16 hit counters.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::blockdev::DevNo;

/// A `writeboost` table line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceTable {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// The device id.
    pub device_id: u8,
    /// The backing device.
    pub backing: DevNo,
    /// The cache id of the table (0: pass-through).
    pub cache_id: u8,
}

impl DeviceTable {
    /// Parses a table line (`dmsetup table NAME`).
    pub fn parse(line: &str) -> Result<Self, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("not a writeboost table: '{}'", line.trim());
        if w.len() != 6 || w[2] != "writeboost" {
            return Err(bad());
        }
        Ok(DeviceTable {
            start: w[0].parse().map_err(|_| bad())?,
            len: w[1].parse().map_err(|_| bad())?,
            device_id: w[3].parse().map_err(|_| bad())?,
            backing: w[4].parse().map_err(|_| bad())?,
            cache_id: w[5].parse().map_err(|_| bad())?,
        })
    }

    /// The same table with another cache id (what attach and detach load).
    pub fn with_cache(&self, cache_id: u8) -> String {
        format!("{} {} writeboost {} {} {}", self.start, self.len, self.device_id, self.backing, cache_id)
    }
}

/// A `writeboost` status line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// The cache the device's I/O goes through (0: none). It can differ
    /// from the table's cache id: after a crash, resuming a cache binds
    /// the devices whose dirty data it holds.
    pub cache_id: u8,
    /// Dirty 4 KiB lines of this device in that cache.
    pub nr_dirty_caches: u64,
}

impl DeviceStatus {
    /// Parses a status line (`dmsetup status NAME`).
    pub fn parse(line: &str) -> Result<Self, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("not a writeboost status: '{}'", line.trim());
        if w.len() < 7 || w[2] != "writeboost" {
            return Err(bad());
        }
        let mut cache_id = None;
        let mut dirty = None;
        for kv in w[3..].chunks(2) {
            match kv {
                ["cache_id", v] => cache_id = v.parse().ok(),
                ["nr_dirty_caches", v] => dirty = v.parse().ok(),
                _ => {}
            }
        }
        Ok(DeviceStatus { cache_id: cache_id.ok_or_else(bad)?, nr_dirty_caches: dirty.ok_or_else(bad)? })
    }
}

/// Whether a `writeboost` table line is the 2.2 form (its first argument is
/// a device, `maj:min`).
pub fn is_22_line(line: &str) -> bool {
    let first = line.split_whitespace().nth(3);
    wbformat::compat::is_22_form(first)
}

/// A `writeboost` table line of the 2.2 form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device22Table {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// The backing device.
    pub backing: DevNo,
    /// The cache device.
    pub cache: DevNo,
    /// The optional arguments, as the table gives them.
    pub options: Vec<(String, u32)>,
}

impl Device22Table {
    /// Parses a 2.2-form table line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("not a writeboost 2.2 table: '{}'", line.trim());
        if w.len() < 5 || w[2] != "writeboost" {
            return Err(bad());
        }
        let opts = wbformat::compat::Options::parse(&w[5..]).map_err(|e| format!("{}: {}", bad(), e))?;
        Ok(Device22Table {
            start: w[0].parse().map_err(|_| bad())?,
            len: w[1].parse().map_err(|_| bad())?,
            backing: w[3].parse().map_err(|_| bad())?,
            cache: w[4].parse().map_err(|_| bad())?,
            options: opts.given().map(|k| (k.name().to_string(), opts.get(k))).collect(),
        })
    }
}

/// A `writeboost` status line of the 2.2 form, field by field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct Device22Status {
    /// Global index of the line allocated last.
    pub cursor_pos: u64,
    /// Lines of the cache.
    pub nr_cache_blocks: u64,
    /// Segments of the cache.
    pub nr_segments: u64,
    /// The segment being filled.
    pub current_id: u64,
    /// Newest segment on the cache device.
    pub last_flushed_id: u64,
    /// Newest segment written back.
    pub last_writeback_id: u64,
    /// Dirty lines.
    pub nr_dirty_cache_blocks: u64,
    /// The 16 hit counters, in the 2.2 order (`write << 3 | hit << 2 |
    /// on_buffer << 1 | fullsize`).
    pub counters: Vec<Counter>,
    /// Segments written before they were full.
    pub nr_partial_flushed: u64,
    /// The tunables the line names (writeback_threshold,
    /// nr_cur_batched_writeback, sync_data_interval,
    /// update_sb_record_interval, read_cache_threshold).
    pub tunables: BTreeMap<String, u64>,
}

impl Device22Status {
    /// Parses a 2.2-form status line (`dmsetup status NAME`).
    pub fn parse(line: &str) -> Result<Self, String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| format!("not a writeboost 2.2 status ({}): '{}'", why, line.trim());
        if w.len() < 3 || w[2] != "writeboost" {
            return Err(bad("no writeboost target"));
        }
        let f = &w[3..];
        if f.len() < 25 {
            return Err(bad("too few fields"));
        }
        let num = |i: usize| f[i].parse::<u64>().map_err(|_| bad("a field is not a number"));
        let mut counters = Vec::new();
        for j in 0..16 {
            counters.push(Counter { write: j & 8 != 0, hit: j & 4 != 0, on_buffer: j & 2 != 0, fullsize: j & 1 != 0, count: num(7 + j)? });
        }
        let n = num(24)? as usize;
        if f.len() != 25 + n || n % 2 != 0 {
            return Err(bad("the tunables' word count does not match"));
        }
        let mut tunables = BTreeMap::new();
        for kv in f[25..].chunks(2) {
            tunables.insert(kv[0].to_string(), kv[1].parse::<u64>().map_err(|_| bad("a tunable is not a number"))?);
        }
        Ok(Device22Status {
            cursor_pos: num(0)?,
            nr_cache_blocks: num(1)?,
            nr_segments: num(2)?,
            current_id: num(3)?,
            last_flushed_id: num(4)?,
            last_writeback_id: num(5)?,
            nr_dirty_cache_blocks: num(6)?,
            counters,
            nr_partial_flushed: num(23)?,
            tunables,
        })
    }
}

/// One of the 16 hit counters: the kind of I/O and how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// A write (else a read).
    pub write: bool,
    /// It hit a cached line.
    pub hit: bool,
    /// The line was in a RAM buffer.
    pub on_buffer: bool,
    /// A whole 4 KiB line.
    pub fullsize: bool,
    /// How many.
    pub count: u64,
}

/// The state of the cache selected by `cache_id_ptr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct CacheStatus {
    /// Approximate static RAM use in bytes.
    pub static_ram_bytes: u64,
    /// Migration allowed.
    pub allow_migrate: bool,
    /// Segments on the cache device.
    pub nr_segments: u64,
    /// Newest segment written back.
    pub last_migrated_segment_id: u64,
    /// Newest segment on the cache device.
    pub last_flushed_segment_id: u64,
    /// The segment being filled.
    pub current_segment_id: u64,
    /// Line cursor.
    pub cursor: u64,
    /// Dirty lines.
    pub nr_dirty_caches: u64,
    /// Segments written before they were full.
    pub nr_partial_flushed: u64,
    /// 0, or the negative errno of the cache's first I/O error.
    pub error: i64,
    /// RAM of the cache's index as the module allocated it (0 if the
    /// module does not say).
    pub index_bytes: u64,
    /// The 16 hit counters.
    pub counters: Vec<Counter>,
}

/// `dmsetup status writeboost-mgr`, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MgrStatus {
    /// The cache id messages act on.
    pub cache_id_ptr: u8,
    /// Selected cache 0: the global `name: value` lines (structure sizes).
    pub global: BTreeMap<String, String>,
    /// A resumed cache is selected: its state.
    pub cache: Option<CacheStatus>,
}

impl MgrStatus {
    /// Parses the manager's status output (with or without dmsetup's
    /// `0 1 writeboost-mgr ` prefix).
    pub fn parse(out: &str) -> Result<Self, String> {
        let mut ptr = None;
        let mut kv = BTreeMap::new();
        let mut counters = Vec::new();
        let mut in_counters = false;
        for line in out.lines() {
            let line = line.trim();
            if line.is_empty() || line.ends_with("writeboost-mgr") || line == "sizeof struct" {
                continue;
            }
            if line.starts_with("write? hit?") {
                in_counters = true;
                continue;
            }
            if in_counters && !line.contains(':') {
                let w: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if w.len() == 5 {
                    counters.push(Counter { write: w[0] != 0, hit: w[1] != 0, on_buffer: w[2] != 0, fullsize: w[3] != 0, count: w[4] });
                    continue;
                }
                return Err(format!("unexpected counter line '{}'", line));
            }
            // `name: value` lines may also follow the counters.
            in_counters = false;
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim(), v.trim());
            if k == "current cache_id_ptr" {
                ptr = Some(v.parse::<u8>().map_err(|_| format!("bad cache_id_ptr '{}'", v))?);
            } else {
                kv.insert(k.to_string(), v.to_string());
            }
        }
        let cache_id_ptr = ptr.ok_or("no 'current cache_id_ptr' line: is this the writeboost-mgr status?")?;
        if cache_id_ptr == 0 || !kv.contains_key("nr_segments") {
            return Ok(MgrStatus { cache_id_ptr, global: if cache_id_ptr == 0 { kv } else { BTreeMap::new() }, cache: None });
        }
        let num = |k: &str| -> Result<u64, String> {
            let v = kv.get(k).ok_or_else(|| format!("no '{}' line", k))?;
            let v = v.split_whitespace().next().unwrap_or("");
            v.parse().map_err(|_| format!("bad '{}' value '{}'", k, v))
        };
        let error = match kv.get("error") {
            Some(v) => v.parse().map_err(|_| format!("bad error value '{}'", v))?,
            None => 0,
        };
        let cache = CacheStatus {
            static_ram_bytes: num("static RAM(approx.)")?,
            allow_migrate: num("allow_migrate")? != 0,
            nr_segments: num("nr_segments")?,
            last_migrated_segment_id: num("last_migrated_segment_id")?,
            last_flushed_segment_id: num("last_flushed_segment_id")?,
            current_segment_id: num("current segment id")?,
            cursor: num("cursor")?,
            nr_dirty_caches: num("nr_dirty_caches").unwrap_or(0),
            nr_partial_flushed: num("nr_partial_flushed").unwrap_or(0),
            error,
            index_bytes: num("index_bytes").unwrap_or(0),
            counters,
        };
        Ok(MgrStatus { cache_id_ptr, global: BTreeMap::new(), cache: Some(cache) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the module prints it: the seed's lines, the counters, then the additions.
    const CACHE: &str = "0 1 writeboost-mgr \ncurrent cache_id_ptr: 1\nstatic RAM(approx.): 5869568 (byte)\nallow_migrate: 1\nnr_segments: 127\nlast_migrated_segment_id: 8\nlast_flushed_segment_id: 9\ncurrent segment id: 10\ncursor: 2301\n\nwrite? hit? on_buffer? fullsize?\n0 0 0 0 10\n1 0 0 0 3\n0 1 0 0 0\n1 1 0 0 0\n0 0 1 0 0\n1 0 1 0 0\n0 1 1 0 0\n1 1 1 0 0\n0 0 0 1 0\n1 0 0 1 2048\n0 1 0 1 7\n1 1 0 1 0\n0 0 1 1 0\n1 0 1 1 0\n0 1 1 1 1\n1 1 1 1 0\n\nnr_dirty_caches: 255\nnr_partial_flushed: 2\nerror: 0\nrecord_migrated_segment_id: 8\ndurable_segment_id: 9\nnr_relocated_lines: 0\nindex_bytes: 501965";

    #[test]
    fn status_22() {
        let line = "0 49152 writeboost 5 1275 5 3 2 1 4 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 7 10 writeback_threshold 70 nr_cur_batched_writeback 32 sync_data_interval 1 update_sb_record_interval 2 read_cache_threshold 0";
        let s = Device22Status::parse(line).unwrap();
        assert_eq!((s.cursor_pos, s.nr_cache_blocks, s.nr_segments, s.current_id), (5, 1275, 5, 3));
        assert_eq!((s.last_flushed_id, s.last_writeback_id, s.nr_dirty_cache_blocks, s.nr_partial_flushed), (2, 1, 4, 7));
        // Index 9: write, miss, not on a buffer, full size.
        assert_eq!(s.counters[9], Counter { write: true, hit: false, on_buffer: false, fullsize: true, count: 9 });
        assert_eq!(s.counters[7], Counter { write: false, hit: true, on_buffer: true, fullsize: true, count: 7 });
        assert_eq!(s.tunables["writeback_threshold"], 70);
        assert_eq!(s.tunables.len(), 5);
        assert!(Device22Status::parse("0 8 writeboost cache_id 1 nr_dirty_caches 0 writeback_error 0 writeback_errors 0").is_err());
        assert!(Device22Status::parse(&line.replace(" 10 writeback", " 8 writeback")).is_err());
        assert!(is_22_line("0 8 writeboost 252:2 252:0"));
        assert!(!is_22_line("0 8 writeboost 1 252:2 0"));
        let t = Device22Table::parse("0 8 writeboost 252:2 252:0 4 writeback_threshold 70 sync_data_interval 1").unwrap();
        assert_eq!(t.backing, "252:2".parse().unwrap());
        assert_eq!(t.cache, "252:0".parse().unwrap());
        assert_eq!(t.options, vec![("writeback_threshold".to_string(), 70), ("sync_data_interval".to_string(), 1)]);
        assert!(Device22Table::parse("0 8 writeboost 252:2 252:0").unwrap().options.is_empty());
    }

    /// The additions before the counters parse the same.
    #[test]
    fn mgr_status_additions_anywhere() {
        let before = "0 1 writeboost-mgr \ncurrent cache_id_ptr: 1\nstatic RAM(approx.): 1 (byte)\nallow_migrate: 0\nnr_segments: 127\nlast_migrated_segment_id: 0\nlast_flushed_segment_id: 0\ncurrent segment id: 1\ncursor: 0\nnr_dirty_caches: 3\nnr_partial_flushed: 0\nerror: -5\n\nwrite? hit? on_buffer? fullsize?\n0 0 0 0 1\n";
        let c = MgrStatus::parse(before).unwrap().cache.unwrap();
        assert_eq!((c.nr_dirty_caches, c.error, c.counters.len()), (3, -5, 1));
        assert_eq!(c.index_bytes, 0, "an older module without index_bytes");
    }

    #[test]
    fn mgr_status_of_a_cache() {
        let s = MgrStatus::parse(CACHE).unwrap();
        assert_eq!(s.cache_id_ptr, 1);
        let c = s.cache.unwrap();
        assert_eq!(c.static_ram_bytes, 5869568);
        assert!(c.allow_migrate);
        assert_eq!((c.nr_segments, c.last_migrated_segment_id, c.last_flushed_segment_id), (127, 8, 9));
        assert_eq!((c.current_segment_id, c.cursor, c.nr_dirty_caches, c.nr_partial_flushed, c.error), (10, 2301, 255, 2, 0));
        assert_eq!(c.index_bytes, 501965);
        assert_eq!(c.counters.len(), 16);
        assert_eq!(c.counters[9], Counter { write: true, hit: false, on_buffer: false, fullsize: true, count: 2048 });
        assert_eq!(c.counters[14], Counter { write: false, hit: true, on_buffer: true, fullsize: true, count: 1 });
    }

    #[test]
    fn mgr_status_global() {
        let out = "0 1 writeboost-mgr \ncurrent cache_id_ptr: 0\nsizeof struct\nmetablock: 16\nmetablock_device: 12\nsegment_header: 96\nsegment_header_device: 3124 (<= 4096)";
        let s = MgrStatus::parse(out).unwrap();
        assert_eq!(s.cache_id_ptr, 0);
        assert!(s.cache.is_none());
        assert_eq!(s.global["metablock_device"], "12");
        assert_eq!(s.global["segment_header_device"], "3124 (<= 4096)");
    }

    #[test]
    fn mgr_status_missing_cache_and_errors() {
        let s = MgrStatus::parse("0 1 writeboost-mgr \ncurrent cache_id_ptr: 7").unwrap();
        assert_eq!(s.cache_id_ptr, 7);
        assert!(s.cache.is_none());
        let e = CACHE.replace("error: 0", "error: -5");
        assert_eq!(MgrStatus::parse(&e).unwrap().cache.unwrap().error, -5);
        assert!(MgrStatus::parse("0 8 linear 8:0 0").is_err());
        assert!(MgrStatus::parse(&CACHE.replace("1 0 0 1 2048", "1 0 x")).is_err());
    }

    #[test]
    fn device_table_and_status() {
        let t = DeviceTable::parse("0 1048576 writeboost 5 254:0 1\n").unwrap();
        assert_eq!(t, DeviceTable { start: 0, len: 1048576, device_id: 5, backing: DevNo { major: 254, minor: 0 }, cache_id: 1 });
        assert_eq!(t.with_cache(0), "0 1048576 writeboost 5 254:0 0");
        assert!(DeviceTable::parse("0 8 linear 8:0 0").is_err());
        assert!(DeviceTable::parse("0 8 writeboost 5 254:0").is_err());
        let s = DeviceStatus::parse("0 1048576 writeboost cache_id 1 nr_dirty_caches 2048").unwrap();
        assert_eq!(s, DeviceStatus { cache_id: 1, nr_dirty_caches: 2048 });
        assert!(DeviceStatus::parse("0 1048576 writeboost").is_err());
        assert!(DeviceStatus::parse("0 1048576 writeboost cache_id x nr_dirty_caches 1").is_err());
    }
}
