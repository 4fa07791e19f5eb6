#!/usr/bin/env python3
"""Tables of `make bench` from the raw outputs of one run.

  report.py DIR    DIR/raw holds what tests/bench/compare.sh left in the
                   guest's /tmp/bench (fio JSON, /proc/stat snapshots, ...)

Prints the figures side by side with their ratios and which goals of the
issue "Fast at every I/O size" they meet. See Documentation/performance.md
for what each figure means. Figures that the module does not report (yet)
are printed as n/a.
"""
import json
import os
import re
import statistics
import sys

NA = "n/a"
USER_HZ = 100          # /proc/stat unit
LINES_PER_SEGMENT = 255
SEGMENT_BYTES = 1 << 20

KINDS = [("lin", "dm-linear"), ("wb", "writeboost"), ("wc", "dm-writecache"), ("dc", "dm-cache")]
ROWS = [
    # name, title, unit, reference (run name, label), goal
    ("r4k32", "4 KiB rand write qd32", "IOPS", ("lin_r4k32", "dm-linear(ram)"), 0.9),
    ("r4k1", "4 KiB rand write qd1", "IOPS", ("lin_r4k1", "dm-linear(ram)"), 0.9),
    ("r64k", "64 KiB rand write qd8", "IOPS", ("lin_r64k", "dm-linear(ram)"), None),
    ("r128k", "128 KiB rand write qd8", "IOPS", ("lin_r128k", "dm-linear(ram)"), None),
    ("seqw", "1 MiB seq write qd8", "MiB/s", ("raw_ram_seqw", "raw ram0"), 0.9),
    ("seqr", "1 MiB seq read uncached qd8", "MiB/s", ("raw_slow_seqr", "raw vda"), 0.9),
]


def fnum(v, digits=0):
    if v is None:
        return NA
    if digits == 0:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Run:
    """One fio run: its JSON and its before/after snapshots."""

    def __init__(self, raw, name):
        self.name = name
        self.ok = False
        self.job = None
        p = os.path.join(raw, name + ".json")
        if os.path.exists(p):
            text = open(p, errors="replace").read()
            i = text.find("{")
            try:
                self.job = json.loads(text[i:])["jobs"][0] if i >= 0 else None
                self.ok = self.job is not None
            except (ValueError, KeyError, IndexError):
                self.job = None
        self.snap = {}
        p = os.path.join(raw, name + ".stat")
        if os.path.exists(p):
            for line in open(p):
                parts = line.split()
                if parts:
                    self.snap[parts[0]] = parts[1:]

    def dir(self):
        if not self.ok:
            return None
        w, r = self.job.get("write", {}), self.job.get("read", {})
        return w if w.get("total_ios", 0) >= r.get("total_ios", 0) else r

    def iops(self):
        d = self.dir()
        return d["iops"] if d and d.get("total_ios") else None

    def mibs(self):
        d = self.dir()
        return d["bw"] / 1024.0 if d and d.get("total_ios") else None

    def value(self, unit):
        """The run's figure in `unit` ("IOPS" or "MiB/s")."""
        return self.iops() if unit == "IOPS" else self.mibs()

    def ios(self):
        d = self.dir()
        return d.get("total_ios") if d else None

    def seconds(self):
        try:
            return float(self.snap["after"][0]) - float(self.snap["before"][0])
        except (KeyError, IndexError, ValueError):
            return None

    def cpu_us_per_io(self):
        """Guest CPU time (all CPUs, every thread and interrupt) per I/O."""
        try:
            b = [int(x) for x in self.snap["before-cpu"][1:]]
            a = [int(x) for x in self.snap["after-cpu"][1:]]
        except (KeyError, ValueError):
            return None
        busy = lambda v: v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        n = self.ios()
        if not n:
            return None
        return (busy(a) - busy(b)) * 1e6 / USER_HZ / n

    def fio_cpu_us_per_io(self):
        """fio's own usr+sys (its threads only) per I/O."""
        n = self.ios()
        if not self.ok or not n:
            return None
        return (self.job["usr_cpu"] + self.job["sys_cpu"]) / 100.0 * self.job["job_runtime"] * 1e3 / n

    def slow_write_sectors(self):
        try:
            return int(self.snap["after-slow"][6]) - int(self.snap["before-slow"][6])
        except (KeyError, IndexError, ValueError):
            return None


def best(raw, base, rounds, unit):
    """Best throughput over the rounds <base>_1.. (the least disturbed by
    the host), its spread, and the lowest (CPU µs/IO, fio's µs/IO)."""
    vals, cpus = [], []
    for i in range(1, rounds + 1):
        r = Run(raw, f"{base}_{i}")
        v = r.value(unit)
        if v is not None:
            vals.append(v)
            c = r.cpu_us_per_io()
            if c is not None:
                cpus.append((c, r.fio_cpu_us_per_io()))
    if not vals:
        return None, None, None
    top = max(vals)
    spread = (top - min(vals)) / top if len(vals) > 1 and top else None
    return top, spread, min(cpus) if cpus else None


def paired_median(raw, base, refbase, rounds, unit):
    """Median over the runs i of <base>_i / <refbase>_i: each pair ran in
    the same round, one after the other, so the host's slow and fast
    moments mostly cancel; the best-of figures compare the luckiest run of
    each instead."""
    pairs = ((Run(raw, f"{base}_{i}").value(unit), Run(raw, f"{refbase}_{i}").value(unit))
             for i in range(1, rounds + 1))
    rs = [a / b for a, b in pairs if a is not None and b]
    return statistics.median(rs) if rs else None


def status_values(path):
    """ "name: value" lines of a status dump."""
    vals = {}
    if not os.path.exists(path):
        return vals
    for line in open(path, errors="replace"):
        m = re.match(r"^\s*([A-Za-z_ ()\.]+?):\s*(-?\d+)", line)
        if m:
            vals[m.group(1).strip()] = int(m.group(2))
    return vals


def results(raw):
    vals = {}
    p = os.path.join(raw, "results.txt")
    if os.path.exists(p):
        for line in open(p):
            parts = line.split()
            if len(parts) >= 2:
                try:
                    vals[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return vals


def config(raw):
    vals = {}
    p = os.path.join(raw, "config.txt")
    if os.path.exists(p):
        for line in open(p):
            k, _, v = line.rstrip("\n").partition(" ")
            vals[k] = v
    return vals


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = ["  " + "  ".join(str(h).rjust(w) if i else str(h).ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    out.append("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  " + "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def samples(raw, name):
    """(uptime, user stat fields, slow stat fields, occupancy fields) per second."""
    out = []
    p = os.path.join(raw, name + ".samples")
    if not os.path.exists(p):
        return out
    for line in open(p, errors="replace"):
        parts = line.rstrip("\n").split("|")
        if len(parts) < 4:
            continue
        try:
            t = float(parts[0])
            u = [int(x) for x in parts[1].split()]
            s = [int(x) for x in parts[2].split()]
        except ValueError:
            continue
        if len(u) < 7 or len(s) < 7:
            continue
        out.append((t, u, s, parts[3].split()))
    return out


def sustained(raw, name, cache_bytes, kind, nr_segments=None):
    """Figures of one sustained run; nr_segments: writeboost's log size."""
    run = Run(raw, name)
    r = {"run": run}
    if not run.ok:
        return r
    rt = run.job["job_runtime"] / 1000.0
    r["runtime"] = rt
    r["iops_all"] = run.iops()
    # Steady state from fio's 1 s IOPS log: the last half of the run.
    p = os.path.join(raw, name + "_iops.1.log")
    if os.path.exists(p):
        pts = []
        for line in open(p):
            f = [x.strip() for x in line.split(",")]
            try:
                pts.append((int(f[0]) / 1000.0, float(f[1])))
            except (ValueError, IndexError):
                pass
        # Each entry is the mean IOPS of the second before it; a second
        # without a completion has no entry (it counts as 0).
        last = [v for t, v in pts if t > rt / 2]
        if pts and rt > 0:
            r["iops_steady"] = sum(last) / (rt - rt / 2)
    sm = samples(raw, name)
    try:
        t0, t1 = float(run.snap["before"][0]), float(run.snap["after"][0])
    except (KeyError, ValueError, IndexError):
        return r
    sm = [s for s in sm if s[0] <= t1 + 0.5]
    if len(sm) < 3:
        return r
    base = sm[0]
    # Fill time: until the user had written as many bytes as the cache holds.
    for t, u, s, o in sm:
        if (u[6] - base[1][6]) * 512 >= cache_bytes:
            r["fill_s"] = t - t0
            break
    mid = t0 + (t1 - t0) / 2
    half = [s for s in sm if s[0] >= mid]
    if len(half) >= 2:
        a, b = half[0], half[-1]
        du = b[1][6] - a[1][6]
        ds = b[2][6] - a[2][6]
        dui = b[1][4] - a[1][4]
        dsi = b[2][4] - a[2][4]
        if du:
            r["amp_steady"] = ds / du
        if dui:
            r["slow_ios_per_write"] = dsi / dui
    du = sm[-1][1][6] - base[1][6]
    ds = sm[-1][2][6] - base[2][6]
    if du:
        r["amp_all"] = ds / du
    # Share of the run with the cache (nearly) full.
    full = 0
    total = 0
    for t, u, s, o in sm:
        try:
            if kind == "wb":
                used, cap = int(o[0]) - int(o[1]), nr_segments
            else:  # writecache status: error, blocks, free, writeback
                used, cap = int(o[1]) - int(o[2]), int(o[1])
        except (ValueError, IndexError):
            continue
        if not cap:
            continue
        total += 1
        full += used >= 0.9 * cap
    if total:
        r["full_share"] = full / total
    return r


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "build/bench"
    raw = os.path.join(d, "raw")
    if not os.path.isdir(raw):
        print(f"bench: no raw outputs in {raw} (see {d}/serial.log)")
        return 1
    cfg = config(raw)
    res = results(raw)
    out = []
    p = out.append
    p(f"writeboost bench: kernel {cfg.get('kernel', '?')}, {cfg.get('cpus', '?')} vCPUs (QEMU TCG: compare ratios, not absolute figures)")
    p(f"  runs capped at {cfg.get('runtime', '?')} s; sustained runs {cfg.get('sustained_runtime', '?')} s; "
      f"sustained cache {cfg.get('sustained_cache_mb', '?')} MiB; {cfg.get('fio', '')}")
    host = {}
    hp = os.path.join(d, "host.txt")
    if os.path.exists(hp):
        for line in open(hp):
            k, _, v = line.rstrip("\n").partition(" ")
            host[k] = v
    p(f"  host: {host.get('host_cpus', '?')} CPUs, load average {host.get('load_before', '?')} before, "
      f"{host.get('load_after', '?')} after; {host.get('wall_s', '?')} s wall time")
    p("")

    # --- MaxSSD, sequential, mixed ---------------------------------------
    rounds = int(cfg.get("rounds", "1")) * int(cfg.get("repeat", "1"))
    p(f"Cache on a RAM disk (ram0, {int(cfg.get('ram_sectors', '0')) >> 11} MiB), backing = slow disk vda; "
      f"best of {rounds} runs ({cfg.get('rounds', '1')} rounds x {cfg.get('repeat', '1')})")
    rows = []
    goals = []
    for name, title, unit, (refrun, reflabel), goal in ROWS:
        refv, refsp, _ = best(raw, refrun, rounds, unit)
        vals, sp = {}, {}
        for k, _ in KINDS[1:]:
            vals[k], sp[k], _ = best(raw, f"{k}_{name}", rounds, unit)
        rwb, rwc, rdc = (ratio(vals[k], refv) for k in ("wb", "wc", "dc"))
        rwbwc = ratio(vals["wb"], vals["wc"])
        mref = paired_median(raw, f"wb_{name}", refrun, rounds, unit)
        mwc = paired_median(raw, f"wb_{name}", f"wc_{name}", rounds, unit)
        dg = 1 if unit != "IOPS" else 0
        rows.append([title, unit, reflabel, fnum(refv, dg), fnum(refsp, 2),
                     fnum(vals["wb"], dg), fnum(sp["wb"], 2), fnum(rwb, 2),
                     fnum(vals["wc"], dg), fnum(rwc, 2),
                     fnum(vals["dc"], dg), fnum(rdc, 2),
                     fnum(rwbwc, 2), fnum(mref, 2), fnum(mwc, 2)])
        if goal is not None:
            goals.append((f"{title}: writeboost >= {goal} of {reflabel}", (rwb, mref), mref is not None and mref >= goal))
        goals.append((f"{title}: writeboost >= dm-writecache", (rwbwc, mwc), mwc is not None and mwc >= 1))
    p(table(rows, ["row", "unit", "reference", "ref", "spread", "writeboost", "spread", "wb/ref",
                   "writecache", "wc/ref", "dm-cache", "dc/ref", "wb/wc", "wb/ref med", "wb/wc med"]))
    p("  spread: (best - worst) / best over the runs, the host's noise")
    p("  wb/ref, wc/ref, dc/ref, wb/wc: best over best; wb/ref med, wb/wc med: median over the runs of the")
    p("  ratio of two runs of the same round (measured one after the other), the goals' figure")
    p("")
    p("CPU per I/O (guest µs, all vCPUs from /proc/stat: fio, kernel threads, interrupts; fio's own usr+sys in brackets;")
    p("the run with the least)")
    rows = []
    for name, title, unit, _, _ in ROWS:
        row = [title]
        cpu = {}
        for k, _ in KINDS:
            _, _, c = best(raw, f"{k}_{name}", rounds, unit)
            cpu[k] = c[0] if c else None
            row.append(f"{fnum(c[0], 1)} ({fnum(c[1], 1)})" if c else NA)
        row.append(fnum(ratio(cpu["wb"], cpu["lin"]), 2))
        rows.append(row)
    p(table(rows, ["row"] + [label for _, label in KINDS] + ["wb/linear"]))
    p("")

    # --- sustained ---------------------------------------------------------
    cache_bytes = int(cfg.get("sustained_cache_mb", "128")) << 20
    p(f"Sustained: 4 KiB random writes qd32 over {cache_bytes * 5 // 2 >> 20} MiB (2.5x the {cache_bytes >> 20} MiB cache on vdb), migration on")
    rows = []
    sus = {}
    for k, label in (("wb", "writeboost"), ("wc", "dm-writecache")):
        for dist in ("uniform", "zipf"):
            n = f"sus_{k}_{dist}"
            st0 = status_values(os.path.join(raw, n + ".status0"))
            rr = sustained(raw, n, cache_bytes, k, st0.get("nr_segments"))
            sus[n] = rr
            fill = rr.get("fill_s")
            rows.append([f"{label} {dist}" + (" (zipf:1.2)" if dist == "zipf" else ""),
                         fnum(rr.get("runtime")), fnum(fill, 1),
                         fnum(ratio(rr.get("runtime"), fill), 1),
                         fnum(rr.get("full_share"), 2),
                         fnum(rr.get("iops_all")), fnum(rr.get("iops_steady")),
                         fnum(rr.get("amp_steady"), 2), fnum(rr.get("amp_all"), 2),
                         fnum(rr.get("slow_ios_per_write"), 2)])
    p(table(rows, ["run", "secs", "fill s", "run/fill", "full share", "IOPS all", "IOPS 2nd half",
                   "slow B/user B 2nd half", "(whole run)", "slow writes/user write 2nd half"]))
    for dist in ("uniform", "zipf"):
        a = sus.get(f"sus_wb_{dist}", {}).get("iops_steady")
        b = sus.get(f"sus_wc_{dist}", {}).get("iops_steady")
        p(f"  steady IOPS writeboost / dm-writecache, {dist}: {fnum(ratio(a, b), 2)}")
        goals.append((f"sustained {dist}: writeboost steady IOPS >= dm-writecache", ratio(a, b),
                      a is not None and b is not None and a >= b))
    p("")
    p("Migration statistics of writeboost's sustained runs (manager status, cumulative since the resume)")
    rows = []
    for dist in ("uniform", "zipf"):
        st = status_values(os.path.join(raw, f"sus_wb_{dist}.status"))
        rounds, ios, byts = st.get("writeback_rounds"), st.get("writeback_ios"), st.get("writeback_bytes")
        rows.append([dist, fnum(rounds), fnum(ios), fnum(byts), fnum(ratio(ios, rounds), 1),
                     fnum(ratio(byts, ios), 0),
                     fnum(st.get("last_migrated_segment_id"))])
    p(table(rows, ["run", "rounds", "backing writes", "bytes", "writes/round", "bytes/write", "last_migrated_segment_id"]))
    p("")

    # --- scale -------------------------------------------------------------
    p("Scale")
    big = status_values(os.path.join(raw, "big.status"))
    ib = big.get("index_bytes")
    pth = os.path.join(raw, "big.index_bytes")
    if ib is None and os.path.exists(pth):
        try:
            ib = int(open(pth).read().split()[0])
        except (ValueError, IndexError):
            pass
    nseg = big.get("nr_segments")
    lines = nseg * LINES_PER_SEGMENT if nseg else None
    ibl = ratio(ib, lines)
    ram = big.get("static RAM(approx.)")
    rows = [["index bytes per cache line (64 GiB cache: index_bytes / (nr_segments * 255))", fnum(ibl, 1), "<= 16"],
            ["  for information: static RAM(approx.) per line, 64 GiB cache", fnum(ratio(ram, lines), 1), ""]]
    goals.append(("index <= 16 bytes per line", ibl, ibl is not None and ibl <= 16))
    t64 = res.get("resume64g_s")
    rows.append([f"resume of a formatted, empty 64 GiB cache ({fnum(nseg)} segments), s", fnum(t64, 2), "< 2"])
    goals.append(("64 GiB formatted cache resumes in < 2 s", t64, t64 is not None and t64 < 2))
    tfl = res.get("fulllog_resume_s")
    fl = status_values(os.path.join(raw, "fulllog.status"))
    nrep = None
    m = None
    pth = os.path.join(raw, "fulllog.dmesg")
    if os.path.exists(pth):
        m = re.search(r"replayed (\d+) segments", open(pth, errors="replace").read())
    if m:
        nrep = int(m.group(1))
    elif fl:
        nrep = fl.get("last_flushed_segment_id", 0) - fl.get("last_migrated_segment_id", 0)
    logmibs = ratio(nrep, tfl)
    rawr = Run(raw, "raw_fastc_seqr").mibs()
    rows.append([f"resume of a full log ({fnum(nrep)} dirty 1 MiB segments on vdb), s", fnum(tfl, 2), ""])
    rows.append(["  log replayed, MiB/s", fnum(logmibs, 1), ""])
    rows.append(["  the cache device's 1 MiB seq read (qd8), MiB/s", fnum(rawr, 1), ""])
    rows.append(["  replay / device read bandwidth", fnum(ratio(logmibs, rawr), 2), ""])
    p(table(rows, ["figure", "value", "goal"]))
    p("")

    # --- read-mostly ---------------------------------------------------------
    reps = int(cfg.get("repeat", "1"))
    p(f"Read-mostly: 4 KiB random reads qd8, zipf:1.2 over a 32 MiB hot set of vda; cache: 128 MiB on vdb; "
      f"best of {reps} runs after one warm-up run")
    rows = []
    rv = {}
    for k, label in (("raw", "raw slow disk (vda)"), ("wb_norc", "writeboost 2.2, read caching off"),
                     ("wb_rc", "writeboost 2.2, read_cache_threshold 4"), ("dc", "dm-cache (smq)")):
        v, sp, _ = best(raw, f"reads_{k}", reps, "IOPS")
        rv[k] = v
        warm = Run(raw, f"reads_{k}_warm").iops()
        note = "setup failed" if res.get(f"reads_{k}_setup_failed") else ""
        rows.append([label, fnum(warm), fnum(v), fnum(sp, 2), fnum(ratio(v, rv.get("raw")), 2),
                     fnum(ratio(v, rv.get("wb_norc")), 2), note])
    p(table(rows, ["configuration", "warm-up IOPS", "IOPS", "spread", "x raw", "x wb off", ""]))
    a, b = rv.get("wb_rc"), rv.get("wb_norc")
    goals.append(("read-mostly: writeboost read caching on > off", ratio(a, b), a is not None and b is not None and a > b))
    p("")

    p("Goals of issue 10")
    rows = []
    for g, v, ok in goals:
        if isinstance(v, tuple):
            best_r, med = v
            rows.append([g, fnum(med, 2), f"(best/best {fnum(best_r, 2)})",
                         "met" if ok else ("not met" if med is not None else "n/a")])
        else:
            rows.append([g, fnum(v, 2), "", "met" if ok else ("not met" if v is not None else "n/a")])
    p(table(rows, ["goal", "value", "", ""]))
    p("  rows of the RAM-disk table: the value is the paired median (see above), best over best in brackets")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
