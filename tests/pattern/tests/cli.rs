//! End-to-end tests: run the real binary against regular files.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;

use wbpattern::parse::parse_sizes;
use wbpattern::stamp::{write_stamp, SECTOR_SIZE};
use wbpattern::stream::{Region, Stream, StreamSpec};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run<S: AsRef<str>>(args: &[S]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_wbpattern"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run wbpattern");
    let r = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "panic: {}", r.stderr);
    r
}

/// A fresh zero-filled file of `bytes` bytes in cargo's test tmpdir.
fn tmpfile(name: &str, bytes: u64) -> String {
    let p =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let f = File::create(&p).expect("create");
    f.set_len(bytes).expect("set_len");
    p.to_string_lossy().into_owned()
}

fn read_sector(path: &str, s: u64) -> [u8; SECTOR_SIZE] {
    let f = File::open(path).expect("open");
    let mut b = [0u8; SECTOR_SIZE];
    f.read_exact_at(&mut b, s * 512).expect("read");
    b
}

fn write_sector(path: &str, s: u64, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).expect("open");
    f.write_all_at(data, s * 512).expect("write");
    f.sync_data().expect("sync");
}

fn stamp(seed: u32, s: u64, gen: u64) -> [u8; SECTOR_SIZE] {
    let mut b = [0u8; SECTOR_SIZE];
    write_stamp(&mut b, seed, s, gen);
    b
}

/// A stream definition, both as CLI arguments and as the library's stream.
#[derive(Clone)]
struct Def {
    start: u64,
    len: u64,
    ops: u64,
    seed: u32,
    sizes: &'static str,
    align: u64,
    sequential: bool,
    gen_base: u64,
}

impl Def {
    fn new(start: u64, len: u64, ops: u64, seed: u32) -> Def {
        Def {
            start,
            len,
            ops,
            seed,
            sizes: "512,4K,64K,1M",
            align: 512,
            sequential: false,
            gen_base: 0,
        }
    }

    fn args(&self, cmd: &str, dev: &str) -> Vec<String> {
        let mut v: Vec<String> = vec![
            cmd.into(),
            dev.into(),
            "--region".into(),
            format!("{}:{}", self.start, self.len),
            "--ops".into(),
            self.ops.to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--sizes".into(),
            self.sizes.into(),
            "--align".into(),
            self.align.to_string(),
            "--gen-base".into(),
            self.gen_base.to_string(),
        ];
        if self.sequential {
            v.push("--sequential".into());
        }
        v
    }

    fn with(&self, cmd: &str, dev: &str, extra: &[&str]) -> Out {
        let mut a = self.args(cmd, dev);
        a.extend(extra.iter().map(|s| s.to_string()));
        run(&a)
    }

    fn stream(&self) -> Stream {
        StreamSpec {
            region: Region {
                start: self.start,
                len: self.len,
            },
            ops: self.ops,
            seed: self.seed,
            sizes: Some(parse_sizes(self.sizes).unwrap()),
            align: self.align,
            sequential: self.sequential,
            gen_base: self.gen_base,
        }
        .build()
        .unwrap()
    }
}

fn summary(o: &Out) -> &str {
    o.stdout.lines().last().unwrap_or("")
}

/// Last op <= `upto` writing sector s (0 = none), and all such ops.
fn writers(st: &Stream, s: u64, upto: u64) -> Vec<u64> {
    st.ops_covering(s, 1, upto)
}

/// Small deterministic PRNG for the tests' own choices.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn write_then_check_passes() {
    let f = tmpfile("basic", 8 << 20);
    let d = Def::new(128, 12288, 400, 11);
    let w = d.with("write", &f, &[]);
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(w.stdout.trim(), "done 400");
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 0, "{}{}", c.stdout, c.stderr);
    assert_eq!(summary(&c), "checked 12288 sectors: 12288 ok, 0 bad");
    // the region was not all overwritten: untouched sectors are zeros
    let c = d.with("check", &f, &["--initial", "zero"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    // a different seed sees nothing it wrote
    let mut other = d.clone();
    other.seed = 12;
    let c = other.with("check", &f, &["--initial", "zero"]);
    assert_eq!(c.code, 1);
    assert!(c.stdout.contains("of another seed 11"), "{}", c.stdout);
}

#[test]
fn check_detects_flipped_byte() {
    let f = tmpfile("flip", 4 << 20);
    let d = Def::new(0, 8192, 200, 3);
    assert_eq!(d.with("write", &f, &[]).code, 0);
    let st = d.stream();
    let (s0, _) = st.op(st.n());
    for (k, off) in [0usize, 5, 13, 20, 25, 100, 511].iter().enumerate() {
        let s = s0; // the last op's first sector is always its final content
        let mut b = read_sector(&f, s);
        let orig = b;
        b[*off] ^= 0x40;
        write_sector(&f, s, &b);
        let c = d.with("check", &f, &[]);
        assert_eq!(c.code, 1, "flip at {off} (case {k}) not detected");
        assert!(
            c.stdout
                .contains(&format!("sector {s}: expected gen {}", st.gen(st.n()))),
            "{}",
            c.stdout
        );
        assert!(summary(&c).ends_with("8191 ok, 1 bad"), "{}", c.stdout);
        write_sector(&f, s, &orig);
    }
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 0);
}

#[test]
fn check_detects_older_op_zeros_and_moved_sector() {
    let f = tmpfile("older", 4 << 20);
    let d = Def::new(64, 8000, 600, 5);
    assert_eq!(d.with("write", &f, &[]).code, 0);
    let st = d.stream();
    let n = st.n();
    // a sector written by at least two ops
    let (s, w) = (64..8064)
        .map(|s| (s, writers(&st, s, n)))
        .find(|(_, w)| w.len() >= 2)
        .expect("an overwritten sector");
    let last = *w.last().unwrap();
    let older = w[w.len() - 2];
    let orig = read_sector(&f, s);
    assert_eq!(orig, stamp(5, s, st.gen(last)));

    write_sector(&f, s, &stamp(5, s, st.gen(older)));
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    let line = format!(
        "sector {s}: expected gen {}, found gen {}",
        st.gen(last),
        st.gen(older)
    );
    assert!(c.stdout.contains(&line), "want '{line}' in:\n{}", c.stdout);
    assert!(summary(&c).ends_with(", 1 bad"));

    write_sector(&f, s, &[0u8; 512]);
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout.contains(&format!(
            "sector {s}: expected gen {}, found zeros",
            st.gen(last)
        )),
        "{}",
        c.stdout
    );

    // another written sector's content moved here
    let other = (64..8064)
        .find(|&x| x != s && !writers(&st, x, n).is_empty())
        .unwrap();
    write_sector(&f, s, &read_sector(&f, other));
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains(&format!("found data of sector {other} gen")),
        "{}",
        c.stdout
    );

    // a stamp of this sector with a generation no op wrote here
    let foreign = (1..=n).find(|&i| !st.covers(i, s)).unwrap();
    write_sector(&f, s, &stamp(5, s, st.gen(foreign)));
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    assert!(c.stdout.contains("never wrote this sector"), "{}", c.stdout);

    // torn: half of the right stamp, half of an older one
    let mut torn = orig;
    torn[256..].copy_from_slice(&stamp(5, s, st.gen(older))[256..]);
    write_sector(&f, s, &torn);
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    assert!(c.stdout.contains("found garbage"), "{}", c.stdout);

    write_sector(&f, s, &orig);
    assert_eq!(d.with("check", &f, &[]).code, 0);
    // only 20 detail lines, and the summary is last
    let z = vec![0u8; 100 * 512];
    let g = OpenOptions::new().write(true).open(&f).unwrap();
    g.write_all_at(&z, 4000 * 512).unwrap();
    g.sync_data().unwrap();
    let c = d.with("check", &f, &[]);
    assert_eq!(c.code, 1);
    let details = c
        .stdout
        .lines()
        .filter(|l| l.starts_with("sector "))
        .count();
    assert_eq!(details, 20, "{}", c.stdout);
    assert!(summary(&c).starts_with("checked 8000 sectors:"));
}

#[test]
fn untouched_sectors_follow_initial() {
    let f = tmpfile("initial", 2 << 20);
    let d = Def::new(0, 4096, 20, 9);
    assert_eq!(d.with("write", &f, &[]).code, 0);
    let st = d.stream();
    let s = (0..4096)
        .find(|&s| writers(&st, s, 20).is_empty())
        .expect("untouched sector");
    let mut junk = [0u8; 512];
    junk[7] = 1;
    write_sector(&f, s, &junk);
    let c = d.with("check", &f, &["--initial", "zero"]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout.contains(&format!(
            "sector {s}: expected initial zeros, found garbage"
        )),
        "{}",
        c.stdout
    );
    assert_eq!(d.with("check", &f, &["--initial", "any"]).code, 0);
    assert_eq!(d.with("check", &f, &[]).code, 0); // default any
}

#[test]
fn fill_then_check_with_initial_gen() {
    let f = tmpfile("fill", 6 << 20);
    let g = "1000000";
    let fo = run(&["fill", &f, "--region", "1M:4M", "--gen", g, "--seed", "4"]);
    assert_eq!(fo.code, 0, "{}", fo.stderr);
    assert_eq!(fo.stdout.trim(), "filled 8192 sectors with gen 1000000");
    let d = Def::new(2048, 8192, 30, 4);
    // before any op (an empty stream), every sector is initial
    let none = Def {
        ops: 0,
        ..d.clone()
    };
    let c = none.with("check", &f, &["--initial", "gen:1000000"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    assert_eq!(d.with("check", &f, &["--initial", "gen:1000000"]).code, 1);
    assert_eq!(d.with("write", &f, &[]).code, 0);
    let c = d.with("check", &f, &["--initial", "gen:1000000"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    let c = d.with("check", &f, &["--initial", "gen:999"]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains("expected initial gen 999, found gen 1000000"),
        "{}",
        c.stdout
    );
    let c = d.with("check", &f, &["--initial", "zero"]);
    assert_eq!(c.code, 1);
    // sectors outside the region were not touched by fill
    assert_eq!(read_sector(&f, 2047), [0u8; 512]);
    assert_eq!(read_sector(&f, 2048 + 8192), [0u8; 512]);
    // an untouched sector of another generation is caught
    let st = d.stream();
    let s = (2048..2048 + 8192)
        .find(|&s| writers(&st, s, 30).is_empty())
        .unwrap();
    write_sector(&f, s, &stamp(4, s, 999_999));
    let c = d.with("check", &f, &["--initial", "gen:1000000"]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout.contains(&format!(
            "sector {s}: expected initial gen 1000000, found gen 999999"
        )),
        "{}",
        c.stdout
    );
}

#[test]
fn durable_rule_accepts_legal_crash_outcomes_and_rejects_older_data() {
    let f = tmpfile("durable", 4 << 20);
    let g: u64 = 5_000_000;
    let d = Def {
        sizes: "512,4K,16K,64K",
        ..Def::new(0, 2048, 300, 21)
    };
    let st = d.stream();
    let (n, dur) = (300u64, 180u64);
    let initial = format!("gen:{g}");
    let chk_at = |durable: u64| {
        d.with(
            "check",
            &f,
            &["--durable", &durable.to_string(), "--initial", &initial],
        )
    };
    let chk = || chk_at(dur);

    for round in 0..6u64 {
        assert_eq!(
            run(&[
                "fill",
                &f,
                "--region",
                "0:2048",
                "--gen",
                &g.to_string(),
                "--seed",
                "21"
            ])
            .code,
            0
        );
        // ops 1..=D completed (and flushed)
        let mut prefix = d.clone();
        prefix.ops = dur;
        let w = prefix.with("write", &f, &["--fsync-every", "60"]);
        assert_eq!(w.code, 0, "{}", w.stderr);
        assert!(w.stdout.contains("flushed 180\ndone 180"), "{}", w.stdout);
        let mut rng = Rng(round * 7 + 1);
        let mut image: Vec<[u8; 512]> = (0..2048).map(|s| read_sector(&f, s)).collect();
        if round % 2 == 0 {
            // a random subset of the later ops landed, in order
            for i in dur + 1..=n {
                if rng.below(2) == 0 {
                    let (a, l) = st.op(i);
                    for s in a..a + l {
                        image[s as usize] = stamp(21, s, st.gen(i));
                    }
                }
            }
        } else {
            // per sector: the durable content or any later op that wrote it
            for s in 0..2048u64 {
                let later = st.ops_covering(s, dur + 1, n);
                let pick = rng.below(later.len() as u64 + 1);
                if pick > 0 {
                    image[s as usize] = stamp(21, s, st.gen(later[pick as usize - 1]));
                }
            }
        }
        let flat: Vec<u8> = image.iter().flatten().copied().collect();
        let h = OpenOptions::new().write(true).open(&f).unwrap();
        h.write_all_at(&flat, 0).unwrap();
        h.sync_data().unwrap();
        let c = chk();
        assert_eq!(
            c.code, 0,
            "round {round}: legal outcome rejected:\n{}",
            c.stdout
        );
        // the same image, claimed complete: some sector is stale
        let c = d.with("check", &f, &["--initial", &initial]);
        assert_eq!(
            c.code, 1,
            "round {round}: incomplete image accepted without --durable"
        );
    }

    // all ops landed is legal too
    let w = d.with("write", &f, &[]);
    assert_eq!(w.code, 0);
    assert_eq!(chk().code, 0);
    assert_eq!(chk_at(0).code, 0);
    assert_eq!(chk_at(n).code, 0);

    // a sector going back to an op older than its last durable op
    let (s, w) = (0..2048u64)
        .map(|s| (s, st.ops_covering(s, 1, dur)))
        .find(|(_, w)| w.len() >= 2)
        .unwrap();
    let a = *w.last().unwrap();
    let b = w[w.len() - 2];
    let keep = read_sector(&f, s);
    write_sector(&f, s, &stamp(21, s, st.gen(b)));
    let c = chk();
    assert_eq!(c.code, 1, "older data accepted:\n{}", c.stdout);
    assert!(
        c.stdout
            .contains(&format!("sector {s}: expected gen {}", st.gen(a))),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains(&format!("found gen {}", st.gen(b))),
        "{}",
        c.stdout
    );
    // ... or back to the initial content
    write_sector(&f, s, &stamp(21, s, g));
    assert_eq!(chk().code, 1);
    // ... which is legal if the durable point is before both a and b
    assert_eq!(
        chk_at(b - 1).code,
        if st.ops_covering(s, 1, b - 1).is_empty() {
            0
        } else {
            1
        }
    );
    write_sector(&f, s, &stamp(21, s, st.gen(b)));
    assert_eq!(chk_at(b).code, 0, "b durable, a not: b is legal");
    assert_eq!(chk_at(a).code, 1);
    write_sector(&f, s, &keep);
    assert_eq!(chk().code, 0);
}

#[test]
fn mixed_sizes_alignment_and_sequential() {
    let f = tmpfile("align", 8 << 20);
    let d = Def {
        sizes: "512,1536,4K,12K,64K,192K",
        align: 4096,
        ..Def::new(3, 12000, 500, 8)
    };
    let st = d.stream();
    for i in 1..=st.n() {
        let (a, l) = st.op(i);
        assert_eq!(a * 512 % 4096, 0);
        assert!(a >= 3 && a + l <= 12003);
    }
    assert_eq!(d.with("write", &f, &[]).code, 0);
    let c = d.with("check", &f, &["--initial", "zero"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    // the same file checked as another alignment's stream fails
    let wrong = Def {
        align: 512,
        ..d.clone()
    };
    assert_eq!(wrong.with("check", &f, &["--initial", "zero"]).code, 1);

    let f2 = tmpfile("seq", 4 << 20);
    let s = Def {
        sequential: true,
        sizes: "4K,64K",
        gen_base: 100,
        ..Def::new(0, 4096, 300, 2)
    };
    assert_eq!(s.with("write", &f2, &[]).code, 0);
    assert_eq!(s.with("check", &f2, &[]).code, 0);
    let st = s.stream();
    assert_eq!(read_sector(&f2, 0)[16..24], {
        let last = st.ops_covering(0, 1, 300).last().copied().unwrap();
        (100 + last).to_le_bytes()
    });
}

#[test]
fn fsync_every_prints_flushed_and_jobs() {
    let f = tmpfile("jobs", 4 << 20);
    let d = Def::new(0, 8192, 250, 6);
    let w = d.with(
        "write",
        &f,
        &["--fsync-every", "100", "--jobs", "4", "--fua"],
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert_eq!(
        w.stdout,
        "flushed 100\nflushed 200\nflushed 250\ndone 250\n"
    );
    let c = d.with("check", &f, &["--jobs", "4", "--initial", "zero"]);
    assert_eq!(c.code, 0, "{}", c.stdout);
    // with --jobs > 1 an unwritten sector still must be initial, and a
    // generation no op wrote here is still bad
    let st = d.stream();
    let s = (0..8192)
        .find(|&s| !st.ops_covering(s, 1, 250).is_empty())
        .unwrap();
    write_sector(&f, s, &[0u8; 512]);
    let c = d.with("check", &f, &["--jobs", "4"]);
    assert_eq!(c.code, 1);
    assert!(
        c.stdout
            .contains(&format!("sector {s}: expected any of gens")),
        "{}",
        c.stdout
    );

    // non-overlapping sequential stream with jobs is exact
    let f2 = tmpfile("jobs-seq", 4 << 20);
    let s = Def {
        sequential: true,
        sizes: "64K",
        ..Def::new(0, 8192, 64, 6)
    };
    let w = s.with(
        "write",
        &f2,
        &["--jobs", "3", "--fsync-every", "16", "--print-progress"],
    );
    assert_eq!(w.code, 0);
    assert_eq!(w.stdout.lines().last(), Some("done 64"));
    assert_eq!(s.with("check", &f2, &[]).code, 0);
}

#[test]
fn bad_usage_exits_2_without_panic() {
    let f = tmpfile("usage", 1 << 20);
    let missing = format!("{f}.missing");
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["write"],
        vec!["write", &f],
        vec!["write", &f, "--region", "0"],
        vec!["write", &f, "--region", "0:0"],
        vec!["write", &f, "--region", "0:100x"],
        vec!["write", &f, "--region", "0:1000B"],
        vec!["write", &f, "--region", "0:8", "--sizes", "64K"],
        vec!["write", &f, "--region", "0:8", "--sizes", "1000"],
        vec!["write", &f, "--region", "0:8", "--sizes", ""],
        vec!["write", &f, "--region", "0:8", "--align", "100"],
        vec![
            "write", &f, "--region", "1:8", "--align", "4K", "--sizes", "4K",
        ],
        vec!["write", &f, "--region", "0:8", "--jobs", "0"],
        vec!["write", &f, "--region", "0:8", "--fsync-every", "0"],
        vec!["write", &f, "--region", "0:8", "--ops", "-1"],
        vec![
            "write",
            &f,
            "--region",
            "0:8",
            "--gen-base",
            "18446744073709551615",
        ],
        vec!["write", &missing, "--region", "0:8"],
        vec!["write", "/dev/null", "--region", "0:8"],
        vec!["check", &f, "--region", "0:4096"],
        vec![
            "check",
            &f,
            "--region",
            "0:8",
            "--ops",
            "3",
            "--durable",
            "4",
        ],
        vec!["check", &f, "--region", "0:8", "--initial", "gen:0"],
        vec!["check", &f, "--region", "0:8", "--initial", "bogus"],
        vec!["check", &missing, "--region", "0:8"],
        vec!["fill", &f, "--region", "0:8"],
        vec!["fill", &f, "--region", "0:8", "--gen", "0"],
        vec!["fill", &f, "--region", "0:8", "--gen", "x"],
        vec!["frobnicate"],
    ];
    for c in cases {
        let o = run(&c);
        assert_eq!(o.code, 2, "{c:?}: {}{}", o.stdout, o.stderr);
        assert!(!o.stderr.trim().is_empty(), "{c:?}: no message");
    }
    // help works everywhere and has examples
    for c in [
        vec!["--help"],
        vec!["write", "--help"],
        vec!["check", "--help"],
        vec!["fill", "--help"],
    ] {
        let o = run(&c);
        assert_eq!(o.code, 0);
        assert!(o.stdout.contains("EXAMPLES"), "{c:?}");
    }
}
