//! The binaries on the host: help, argument validation, refusals before
//! anything reaches device-mapper (a fake `dmsetup` records every call),
//! and the daemon against a fake sysfs tree.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BINS: &[&str] = &[
    "writeboost-create",
    "writeboost-format-cache",
    "writeboost-resume-cache",
    "writeboost-attach",
    "writeboost-detach",
    "writeboost-remove",
    "writeboost-free-cache",
    "writeboost-status",
    "writeboost-daemon",
];

fn bin(name: &str) -> PathBuf {
    match name {
        "writeboost-create" => env!("CARGO_BIN_EXE_writeboost-create"),
        "writeboost-format-cache" => env!("CARGO_BIN_EXE_writeboost-format-cache"),
        "writeboost-resume-cache" => env!("CARGO_BIN_EXE_writeboost-resume-cache"),
        "writeboost-attach" => env!("CARGO_BIN_EXE_writeboost-attach"),
        "writeboost-detach" => env!("CARGO_BIN_EXE_writeboost-detach"),
        "writeboost-remove" => env!("CARGO_BIN_EXE_writeboost-remove"),
        "writeboost-free-cache" => env!("CARGO_BIN_EXE_writeboost-free-cache"),
        "writeboost-status" => env!("CARGO_BIN_EXE_writeboost-status"),
        "writeboost-daemon" => env!("CARGO_BIN_EXE_writeboost-daemon"),
        _ => unreachable!(),
    }
    .into()
}

/// A sandbox: fake sysfs, run directory, and a `dmsetup` that logs its
/// arguments and prints nothing.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(module_loaded: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dm = dir.path().join("dmsetup");
        std::fs::write(&dm, format!("#!/bin/sh\necho \"$*\" >> {}\n", dir.path().join("dm.log").display())).unwrap();
        std::fs::set_permissions(&dm, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("sys/dev/block")).unwrap();
        if module_loaded {
            std::fs::create_dir_all(dir.path().join("sys/module/dm_writeboost")).unwrap();
        }
        Sandbox { dir }
    }

    fn sys(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    fn cmd(&self, name: &str) -> Command {
        let mut c = Command::new(bin(name));
        c.env("WRITEBOOST_SYSFS", self.sys())
            .env("WRITEBOOST_RUN_DIR", self.dir.path().join("run"))
            .env("WRITEBOOST_DMSETUP", self.dir.path().join("dmsetup"))
            .env("WRITEBOOST_STATE_FILE", self.state_file());
        c
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("lib/state.json")
    }

    fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).output().unwrap()
    }

    /// The dmsetup calls made so far.
    fn dm_calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dm.log")).unwrap_or_default()
    }

    fn add_cache(&self, id: u8, allow: u8, update_interval: u64) {
        let d = self.sys().join(format!("module/dm_writeboost/caches/{}", id));
        std::fs::create_dir_all(&d).unwrap();
        for (n, v) in [
            ("allow_migrate", allow.to_string()),
            ("force_migrate", "0".into()),
            ("barrier_deadline_ms", "3".into()),
            ("nr_max_batched_migration", "1".into()),
            ("update_interval", update_interval.to_string()),
            ("commit_super_block_interval", "0".into()),
            ("flush_current_buffer_interval", "0".into()),
            ("last_flushed_segment_id", "0".into()),
            ("last_migrated_segment_id", "0".into()),
            ("nr_dirty_caches", "0".into()),
        ] {
            std::fs::write(d.join(n), format!("{}\n", v)).unwrap();
        }
    }

    fn cache_node(&self, id: u8, node: &str) -> String {
        std::fs::read_to_string(self.sys().join(format!("module/dm_writeboost/caches/{}/{}", id, node))).unwrap().trim().to_string()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_command_has_help_with_examples() {
    for b in BINS {
        let o = Command::new(bin(b)).arg("--help").output().unwrap();
        assert!(o.status.success(), "{b} --help");
        let s = stdout(&o);
        assert!(s.contains("Examples:"), "{b} --help has no examples:\n{s}");
        assert!(s.contains("Exit status"), "{b} --help does not document its exit status");
    }
}

#[test]
fn bad_ids_are_refused_by_the_parser() {
    let sb = Sandbox::new(true);
    for (b, args) in [
        ("writeboost-attach", vec!["0", "1"]),
        ("writeboost-attach", vec!["1", "128"]),
        ("writeboost-attach", vec!["x", "1"]),
        ("writeboost-detach", vec!["-1"]),
        ("writeboost-remove", vec!["200"]),
        ("writeboost-free-cache", vec!["0"]),
        ("writeboost-resume-cache", vec!["0", "/dev/null"]),
        ("writeboost-create", vec!["wb", "0", "/dev/null"]),
        ("writeboost-attach", vec!["1", "1", "--migrate-threshold", "101"]),
        ("writeboost-resume-cache", vec!["1", "/dev/null", "--update-interval", "3601"]),
        ("writeboost-resume-cache", vec!["1", "/dev/null", "--nr-max-batched-migration", "0"]),
        ("writeboost-create", vec!["--mgr", "wb"]),
        ("writeboost-free-cache", vec!["1", "--drain", "--keep-dirty"]),
    ] {
        let o = sb.run(b, &args);
        assert_eq!(o.status.code(), Some(2), "{b} {args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
    assert_eq!(sb.dm_calls(), "", "dmsetup was called for a bad invocation");
}

#[test]
fn missing_module_is_explained() {
    let sb = Sandbox::new(false);
    for (b, args) in [
        ("writeboost-create", vec!["--mgr"]),
        ("writeboost-attach", vec!["1", "1"]),
        ("writeboost-detach", vec!["1"]),
        ("writeboost-remove", vec!["--mgr"]),
    ] {
        let o = sb.run(b, &args);
        assert_eq!(o.status.code(), Some(2), "{b} {args:?}");
        assert!(stderr(&o).contains("dm_writeboost kernel module is not loaded"), "{b}: {}", stderr(&o));
    }
    let o = sb.run("writeboost-status", &[]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("module is not loaded"), "{}", stdout(&o));
    let o = sb.run("writeboost-status", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["module_loaded"], false);
    assert_eq!(v["daemon"]["running"], false);
    assert_eq!(sb.dm_calls(), "");
}

#[test]
fn paths_and_names_are_checked_before_device_mapper() {
    let sb = Sandbox::new(true);
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("writeboost-create", vec!["wb1", "1", "/dev/does-not-exist"], "backing device /dev/does-not-exist does not exist"),
        ("writeboost-create", vec!["wb1", "1", "/dev/null"], "is not a block device"),
        ("writeboost-create", vec!["a/b", "1", "/dev/null"], "invalid device name 'a/b'"),
        ("writeboost-create", vec!["writeboost-mgr", "1", "/dev/null"], "manager's name"),
        ("writeboost-create", vec!["wb1", "1", "/dev/my disk"], "whitespace"),
        ("writeboost-format-cache", vec!["/dev/does-not-exist"], "cache device /dev/does-not-exist does not exist"),
        ("writeboost-format-cache", vec!["/tmp"], "cache device /tmp is not a block device"),
        ("writeboost-resume-cache", vec!["1", "/dev/does-not-exist"], "does not exist"),
    ];
    for (b, args, msg) in cases {
        let o = sb.run(b, &args);
        assert_eq!(o.status.code(), Some(2), "{b} {args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{b} {args:?}: expected '{msg}' in: {}", stderr(&o));
    }
    assert_eq!(sb.dm_calls(), "", "dmsetup was called for a bad invocation");
}

#[test]
fn missing_manager_is_explained() {
    let sb = Sandbox::new(true);
    // A real block device of the host, described in the fake sysfs.
    let Some((dev, devno)) = ["/dev/loop0", "/dev/vda", "/dev/sda"].iter().find_map(|p| {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let m = std::fs::metadata(p).ok()?;
        m.file_type().is_block_device().then(|| {
            let r = m.rdev();
            (p.to_string(), format!("{}:{}", nix::sys::stat::major(r), nix::sys::stat::minor(r)))
        })
    }) else {
        eprintln!("no block device on this host: skipped");
        return;
    };
    let d = sb.sys().join("dev/block").join(&devno);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("size"), "262144\n").unwrap();
    let o = sb.run("writeboost-format-cache", &[&dev]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("the writeboost manager does not exist (create it with: writeboost-create --mgr)"), "{}", stderr(&o));
    // Only read-only queries were made.
    assert!(sb.dm_calls().lines().all(|l| l.starts_with("table ") || l.starts_with("status ") || l.starts_with("info ")), "{}", sb.dm_calls());
}

#[test]
fn unknown_device_id_is_explained() {
    let sb = Sandbox::new(true);
    let o = sb.run("writeboost-attach", &["9", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("there is no writeboost device with device id 9"), "{}", stderr(&o));
    let o = sb.run("writeboost-detach", &["9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("device id 9"));
    assert!(sb.dm_calls().lines().all(|l| !l.starts_with("load") && !l.starts_with("suspend") && !l.starts_with("message")), "{}", sb.dm_calls());
}

#[test]
fn daemon_once_allows_migration_of_a_cache_without_devices() {
    let sb = Sandbox::new(true);
    sb.add_cache(1, 0, 1);
    sb.add_cache(2, 0, 0); // update_interval 0: left alone
    let o = sb.run("writeboost-daemon", &["run", "--once"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sb.cache_node(1, "allow_migrate"), "1");
    assert_eq!(sb.cache_node(2, "allow_migrate"), "0");
    assert!(stdout(&o).contains("cache 1: allow_migrate 0 -> 1: no device is attached"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("cache 2"), "{}", stdout(&o));
}

#[test]
fn daemon_start_status_stop() {
    let sb = Sandbox::new(false);
    let pid = sb.dir.path().join("run/daemon.pid");
    let log = sb.dir.path().join("daemon.log");
    let status = |sb: &Sandbox| sb.run("writeboost-daemon", &["status"]).status.code();
    assert_eq!(status(&sb), Some(3));
    let o = sb.run("writeboost-daemon", &["start", "--log-file", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("writeboost-daemon started (pid "), "{}", stdout(&o));
    assert!(pid.exists());
    assert_eq!(status(&sb), Some(0));
    // A second one is refused.
    let o = sb.run("writeboost-daemon", &["start", "--log-file", log.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already running"), "{}", stderr(&o));
    let o = sb.run("writeboost-daemon", &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already running"), "{}", stderr(&o));
    let o = sb.run("writeboost-daemon", &["stop"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("writeboost-daemon stopped"), "{}", stdout(&o));
    assert_eq!(status(&sb), Some(3));
    assert!(!pid.exists());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("module is not loaded; waiting"), "{text}");
    assert!(text.contains("writeboost-daemon stopped"), "{text}");
    // Stopping a stopped daemon is fine.
    let o = sb.run("writeboost-daemon", &["stop"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("not running"));
}

#[test]
fn daemon_follows_the_sysfs_tree() {
    let sb = Sandbox::new(true);
    let mut child = sb.cmd("writeboost-daemon").args(["run", "--tick-ms", "20"]).spawn().unwrap();
    // A cache appears after the start: allowed within a few ticks.
    std::thread::sleep(Duration::from_millis(100));
    sb.add_cache(3, 0, 1);
    let t = Instant::now();
    while sb.cache_node(3, "allow_migrate") != "1" {
        assert!(t.elapsed() < Duration::from_secs(5), "daemon did not pick up the new cache");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert!(st.success());
    assert!(!Path::new(&sb.dir.path().join("run/daemon.pid")).exists());
}

/// Block devices of the host (`path`, `major:minor`), for tests that need
/// paths the tools accept; described in the fake sysfs with 262144 sectors.
fn host_block_devices(sb: &Sandbox, n: usize) -> Option<Vec<(String, String)>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut v = Vec::new();
    for p in ["/dev/loop0", "/dev/loop1", "/dev/loop2", "/dev/vda", "/dev/vdb", "/dev/sda", "/dev/sdb", "/dev/nvme0n1"] {
        let Ok(m) = std::fs::metadata(p) else { continue };
        if !m.file_type().is_block_device() {
            continue;
        }
        let devno = format!("{}:{}", nix::sys::stat::major(m.rdev()), nix::sys::stat::minor(m.rdev()));
        let d = sb.sys().join("dev/block").join(&devno);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("size"), "262144\n").unwrap();
        v.push((p.to_string(), devno));
        if v.len() == n {
            return Some(v);
        }
    }
    None
}

/// A `dmsetup` that knows a manager and, once `create` ran, one writeboost
/// device wb1 (device 1 over `backing`, cache 0).
fn fake_dmsetup_with_device(sb: &Sandbox, backing_devno: &str) {
    let d = sb.dir.path();
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> {log}
case "$1 $2 $3" in
  "table --target writeboost-mgr") echo "writeboost-mgr: 0 1 writeboost-mgr" ;;
  "table --target writeboost") [ -f {mk} ] && echo "wb1: 0 262144 writeboost 1 {bk} 0" ;;
  "status --target writeboost") [ -f {mk} ] && echo "wb1: 0 262144 writeboost cache_id 0 nr_dirty_caches 0" ;;
  info*) echo "DM_NAME='writeboost-mgr' DM_MAJOR='252' DM_MINOR='8' DM_OPEN='0' DM_ATTR='L--w'"
         [ -f {mk} ] && echo "DM_NAME='wb1' DM_MAJOR='252' DM_MINOR='9' DM_OPEN='0' DM_ATTR='L--w'" ;;
  create*) touch {mk} ;;
esac
exit 0
"#,
        log = d.join("dm.log").display(),
        mk = d.join("created").display(),
        bk = backing_devno
    );
    let dm = d.join("dmsetup");
    std::fs::write(&dm, script).unwrap();
    std::fs::set_permissions(&dm, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_state(sb: &Sandbox, disk_devno: &str, cache_devno: &str) {
    std::fs::create_dir_all(sb.state_file().parent().unwrap()).unwrap();
    let st = serde_json::json!({
        "version": 1,
        "disks": [{
            "disk": format!("devno:{}:262144", disk_devno),
            "path": "/dev/slow",
            "device_id": 1,
            "device_name": "wb1",
            "cache_id": 1,
            "cache": format!("devno:{}:262144", cache_devno),
            "cache_path": "/dev/fastcache",
            "dirty": true,
            "updated": 1
        }]
    });
    std::fs::write(sb.state_file(), serde_json::to_string_pretty(&st).unwrap()).unwrap();
}

fn mutating_dm_calls(sb: &Sandbox) -> Vec<String> {
    sb.dm_calls()
        .lines()
        .filter(|l| !(l.starts_with("table ") || l.starts_with("status ") || l.starts_with("info ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn forgotten_cache_create_is_refused_until_forced_and_resume_warns() {
    let sb = Sandbox::new(true);
    let Some(devs) = host_block_devices(&sb, 2) else {
        eprintln!("fewer than two block devices on this host: skipped");
        return;
    };
    let ((slow, slow_no), (fast, fast_no)) = (devs[0].clone(), devs[1].clone());
    fake_dmsetup_with_device(&sb, &slow_no);
    write_state(&sb, &slow_no, &fast_no);

    // Without a cache: refused, naming the cache and how to resume it, and
    // nothing reaches device-mapper.
    let o = sb.run("writeboost-create", &["wb1", "1", &slow]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("{} was last attached to cache 1 (/dev/fastcache) as device 1", slow)), "{e}");
    assert!(e.contains(&format!("writeboost-create wb1 1 {} 1 && writeboost-resume-cache 1 /dev/fastcache", slow)), "{e}");
    assert!(e.contains("--force"), "{e}");
    // An explicit 0 is the same; another cache too.
    assert_eq!(sb.run("writeboost-create", &["wb1", "1", &slow, "0"]).status.code(), Some(2));
    assert_eq!(sb.run("writeboost-create", &["wb1", "1", &slow, "2"]).status.code(), Some(2));
    assert!(mutating_dm_calls(&sb).is_empty(), "{:?}", mutating_dm_calls(&sb));
    assert_eq!(sb.run("writeboost-create", &["wb1", "1", &slow, "128"]).status.code(), Some(2));

    // For its own cache (the after-crash order): created, told to resume.
    let o = sb.run("writeboost-create", &["wb1", "1", &slow, "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("cache 1 is not resumed: resume it next (writeboost-resume-cache 1 /dev/fastcache)"), "{}", stdout(&o));
    assert!(sb.dm_calls().contains(&format!("create wb1 --table 0 262144 writeboost 1 {} 0", slow)), "{}", sb.dm_calls());
    std::fs::remove_file(sb.dir.path().join("created")).unwrap();
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sb.state_file()).unwrap()).unwrap();
    assert_eq!(st["disks"][0]["used_without_cache"], serde_json::Value::Null);

    // --force: created, warned, recorded.
    let o = sb.run("writeboost-create", &["wb1", "1", &slow, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("warning: --force: {} is used without cache 1 (/dev/fastcache)", slow)), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(sb.state_file()).unwrap()).unwrap();
    assert!(st["disks"][0]["used_without_cache"].as_u64().is_some(), "{st}");
    assert_eq!(st["disks"][0]["dirty"], true);

    // Resuming that cache warns (before the kernel is asked; here the
    // fake device is no cache, which the tool then refuses).
    let o = sb.run("writeboost-resume-cache", &["1", &fast]);
    let e = stderr(&o);
    assert!(e.contains("warning: /dev/slow (device 1) was used without this cache since"), "{e}");
    assert!(e.contains("resuming cache 1 replays that older data over what was written since"), "{e}");
    // Another cache device: no warning.
    write_state(&sb, &slow_no, "9:9");
    let o = sb.run("writeboost-resume-cache", &["1", &fast]);
    assert!(!stderr(&o).contains("was used without"), "{}", stderr(&o));
}

#[test]
fn unreadable_state_file_is_reported_and_treated_as_empty() {
    let sb = Sandbox::new(true);
    let Some(devs) = host_block_devices(&sb, 1) else {
        eprintln!("no block device on this host: skipped");
        return;
    };
    let (slow, slow_no) = devs[0].clone();
    fake_dmsetup_with_device(&sb, &slow_no);
    std::fs::create_dir_all(sb.state_file().parent().unwrap()).unwrap();
    for bad in ["{\"version\": 1, \"disks\": [", "{\"version\": 7, \"disks\": []}", "\u{0}\u{1}"] {
        std::fs::write(sb.state_file(), bad).unwrap();
        let o = sb.run("writeboost-create", &["wb1", "1", &slow]);
        assert!(o.status.success(), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("is unreadable"), "{bad}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        std::fs::remove_file(sb.dir.path().join("created")).unwrap();
    }
    // A state path that is a directory: also only a warning.
    std::fs::remove_file(sb.state_file()).unwrap();
    std::fs::create_dir_all(sb.state_file()).unwrap();
    let o = sb.run("writeboost-create", &["wb1", "1", &slow]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is unreadable"), "{}", stderr(&o));
}
