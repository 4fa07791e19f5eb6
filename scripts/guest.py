#!/usr/bin/env python3
"""Boot the project's kernel in QEMU and run test scripts in the guest.

  guest.py run   [options] SCRIPT...   one boot, these scripts in order
  guest.py suite [options] [DIR]       every test under DIR (default tests/guest)

A test is a shell script run by busybox sh in the guest (see
tests/guest/README.md). A directory holding boot1.sh, boot2.sh, ... is one
test spanning several boots on the same disks: every boot but the last must
end in a power cut (wb_powercut), the last one gives the verdict.

The guest reports on the serial console. A test fails if its script fails,
if it reports nothing (hang, panic, early power-off), or if the kernel logs
an oops, BUG, WARNING, panic, lockup or hung task while it runs. Serial logs
of failed boots are kept under build/guest-logs/.

Disks: vda = slow backing disk (HDD-like IOPS throttle), vdb = fast cache
disk. Image files live in --disk-dir (kept) or a temporary directory.
"""
import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_DIR = os.path.join(ROOT, "build", "guest-logs")

BAD_KERNEL = re.compile(
    r"(Kernel panic|BUG: |Oops|WARNING: |general protection fault|"
    r"Call Trace:|blocked for more than \d+ seconds|soft lockup|hard LOCKUP|"
    r"rcu_sched detected stalls|kernel BUG at|RIP: 0010|UBSAN:|"
    r"KASAN:|list_add corruption|refcount_t: )"
)

GUEST_BINS = [
    "dmsetup", "fio", "mkfs.ext4", "mke2fs", "e2fsck", "fsck.ext4", "mkfs.xfs",
    "xfs_repair", "xfs_io", "blkdiscard", "losetup", "sfdisk",
]


def log(msg):
    print(f"[guest] {msg}", file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def kernel_dir():
    out = sh([os.path.join(ROOT, "scripts", "build-kernel.sh")])
    return out.strip().splitlines()[-1]


def libs_of(binary):
    """Shared libraries (and the loader) a dynamic binary needs."""
    try:
        out = sh(["ldd", binary])
    except subprocess.CalledProcessError:
        return []  # static
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+)", line.split("=>")[-1])
        if m and os.path.exists(m.group(1)):
            libs.append(m.group(1))
    return libs


def our_binaries():
    bins = []
    rel = os.path.join(ROOT, "tools", "target", "release")
    if os.path.isdir(rel):
        for f in sorted(os.listdir(rel)):
            p = os.path.join(rel, f)
            if f.startswith("writeboost-") and os.access(p, os.X_OK) and os.path.isfile(p):
                bins.append(p)
    for pat in (os.path.join(ROOT, "tools", "target", "release", "examples", "wbimage"),
                os.path.join(ROOT, "tests", "pattern", "target", "release", "wbpattern"),
                os.path.join(ROOT, "tests", "crashtest", "target", "release", "wbcrash")):
        if os.path.exists(pat):
            bins.append(pat)
    return bins


# dmsetup's directory in the guest: on the PATH of the test scripts (which
# use dmsetup for their own checks), removed from the PATH of the admin
# tools, which must not need it (they speak the DM ioctls).
DMSETUP_DIR = "/wb/dmsetup"


def tools_wrapper(name):
    """/wb/bin/NAME: runs /wb/libexec/NAME (exec: same pid, same signals)
    with the caller's PATH less DMSETUP_DIR."""
    return f"""#!/bin/sh
# Made by scripts/guest.py: {name} runs without dmsetup on its PATH.
p=":$PATH:"
p=${{p//:{DMSETUP_DIR.replace('/', chr(92) + '/')}:/:}}
p=${{p#:}}
PATH=${{p%:}}
export PATH
exec /wb/libexec/{name} "$@"
"""


_BASE_INITRAMFS = {}


def build_base_initramfs(module):
    """The part of the initramfs every boot shares: busybox, host tools with
    their libraries, the module, our tools, the shell libraries and /init.
    Built once per run of this script (a suite boots many times) in a
    directory that lives as long as the process; uncompressed, because
    gunzip under TCG costs the guest seconds per boot."""
    key = (os.path.abspath(module), os.path.getmtime(module))
    if key in _BASE_INITRAMFS:
        return _BASE_INITRAMFS[key]
    work = tempfile.mkdtemp(prefix="wbinitramfs-")
    atexit.register(shutil.rmtree, work, True)
    root = os.path.join(work, "root")
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "lib", "lib64", "etc", "dev",
              "proc", "sys", "tmp", "wb/bin", "wb/libexec", "wb/tests"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    bb = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(bb, os.path.join(root, "bin", "busybox"))
    libs = set()
    for name in GUEST_BINS:
        p = shutil.which(name) or shutil.which(name, path="/sbin:/usr/sbin")
        if not p:
            continue
        # dmsetup has a directory of its own (on the test scripts' PATH,
        # not on the admin tools': see tools_wrapper).
        dst = os.path.join(root, DMSETUP_DIR.lstrip("/")) if name == "dmsetup" else os.path.join(root, "usr", "sbin")
        os.makedirs(dst, exist_ok=True)
        shutil.copy2(p, os.path.join(dst, name))
        libs.update(libs_of(p))
    os.makedirs(os.path.join(root, "wb", "libexec"), exist_ok=True)
    for p in our_binaries():
        name = os.path.basename(p)
        if name.startswith("writeboost-"):
            shutil.copy2(p, os.path.join(root, "wb", "libexec", name))
            w = os.path.join(root, "wb", "bin", name)
            with open(w, "w") as f:
                f.write(tools_wrapper(name))
            os.chmod(w, 0o755)
        else:
            shutil.copy2(p, os.path.join(root, "wb", "bin", name))
        libs.update(libs_of(p))
    for lib in libs:
        dst = os.path.join(root, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dst)
    # mke2fs wants its config; dmsetup is happier with an /etc/lvm-less env.
    if os.path.exists("/etc/mke2fs.conf"):
        shutil.copy2("/etc/mke2fs.conf", os.path.join(root, "etc", "mke2fs.conf"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    shutil.copy2(module, os.path.join(root, "wb", "dm-writeboost.ko"))
    gdir = os.path.join(ROOT, "tests", "guest")
    shutil.copy2(os.path.join(gdir, "lib.sh"), os.path.join(root, "wb", "tests", "lib.sh"))
    shutil.copy2(os.path.join(gdir, "init.sh"), os.path.join(root, "init"))
    # Shell libraries of other harnesses (tests/crashtest/lib.sh -> /wb/crashtest/).
    cdir = os.path.join(ROOT, "tests", "crashtest")
    if os.path.isdir(cdir):
        os.makedirs(os.path.join(root, "wb", "crashtest"), exist_ok=True)
        for f in sorted(os.listdir(cdir)):
            if f.endswith(".sh"):
                shutil.copy2(os.path.join(cdir, f), os.path.join(root, "wb", "crashtest", f))
    os.chmod(os.path.join(root, "init"), 0o755)
    out = os.path.join(work, "base.cpio")
    subprocess.run(f"cd {root} && find . | cpio -o -H newc --quiet > {out}",
                   shell=True, check=True)
    shutil.rmtree(root)
    _BASE_INITRAMFS[key] = out
    return out


def build_initramfs(work, scripts, module, timeout):
    """The initramfs of one boot: the shared base archive followed by a small
    archive with this boot's test scripts, run list and time limit (the
    kernel unpacks concatenated cpio archives in order)."""
    base = build_base_initramfs(module)
    root = os.path.join(work, "root")
    os.makedirs(os.path.join(root, "wb", "tests"), exist_ok=True)
    names = []
    for i, s in enumerate(scripts):
        name = f"{i:02d}-" + label_of(s).replace("/", "-")
        shutil.copy2(s, os.path.join(root, "wb", "tests", name))
        names.append(name)
    with open(os.path.join(root, "wb", "run-list"), "w") as f:
        f.write("\n".join(names) + "\n")
    with open(os.path.join(root, "wb", "test-timeout"), "w") as f:
        f.write(f"{timeout}\n")
    out = os.path.join(work, "initramfs.cpio")
    # Only files: the directories exist in the base (a directory entry here
    # would be unpacked again, harmlessly, but there is no need).
    subprocess.run(f"cp {base} {out} && cd {root} && find wb/run-list wb/test-timeout wb/tests -type f"
                   f" | cpio -o -H newc --quiet >> {out}", shell=True, check=True)
    return out, names


def label_of(path):
    rel = os.path.relpath(os.path.abspath(path), os.path.join(ROOT, "tests"))
    if rel.startswith(".."):
        rel = os.path.basename(path)
    return rel[:-3] if rel.endswith(".sh") else rel


def ensure_disk(path, size_mb, fresh):
    if fresh and os.path.exists(path):
        os.unlink(path)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)


def drive(path, iops, bps, cache_mode):
    opts = f"file={path},format=raw,if=virtio,cache={cache_mode},aio=threads,discard=unmap"
    if iops:
        opts += f",throttling.iops-total={iops}"
    if bps:
        opts += f",throttling.bps-total={bps}"
    return ["-drive", opts]


def direct_io_ok(directory):
    try:
        fd = os.open(os.path.join(directory, ".odirect-probe"), os.O_CREAT | os.O_RDWR | os.O_DIRECT)
        os.close(fd)
        os.unlink(os.path.join(directory, ".odirect-probe"))
        return True
    except OSError:
        return False


def boot(args, scripts, disk_dir, expect_crash=False, tag="run"):
    """One boot. Returns (verdicts {name: (ok, reason)}, names, log path, crashed)."""
    kdir = args.kernel_dir or kernel_dir()
    bzimage = os.path.join(kdir, "arch", "x86", "boot", "bzImage")
    module = args.module or os.path.join(ROOT, "dm-writeboost.ko")
    if not os.path.exists(module):
        raise SystemExit(f"{module} not found: build the module first (make module)")
    work = tempfile.mkdtemp(prefix="wbguest-")
    try:
        initrd, names = build_initramfs(work, scripts, module, args.test_timeout)
        backing = os.path.join(disk_dir, "backing.img")
        cache = os.path.join(disk_dir, "cache.img")
        ensure_disk(backing, args.backing_mb, False)
        ensure_disk(cache, args.cache_mb, False)
        cache_mode = "none" if direct_io_ok(disk_dir) else "writeback"
        cmd = [
            "qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", str(args.cpus), "-m", f"{args.memory_mb}M", "-nographic",
            "-no-reboot", "-kernel", bzimage, "-initrd", initrd,
            "-append", "console=ttyS0 panic=-1 oops=panic loglevel=7 log_buf_len=8M "
                       "softlockup_panic=0 hung_task_panic=0"
                       + (" " + args.kernel_args if args.kernel_args else ""),
            "-serial", "stdio", "-monitor", "none",
        ]
        cmd += drive(backing, args.slow_iops, args.slow_bps, cache_mode)
        cmd += drive(cache, args.fast_iops, args.fast_bps, cache_mode)
        for extra in args.extra_disk or []:
            cmd += drive(extra, 0, 0, cache_mode)
        os.makedirs(LOG_DIR, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        logpath = os.path.join(LOG_DIR, f"{stamp}-{tag}.log")
        t0 = time.time()
        timed_out = False
        in_test = False
        with open(logpath, "w") as logf:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace")
            deadline = t0 + args.timeout
            import selectors
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.time()
                if left <= 0:
                    timed_out = True
                    proc.kill()
                    break
                if not sel.select(timeout=min(left, 1.0)):
                    if proc.poll() is not None:
                        break
                    continue
                line = proc.stdout.readline()
                if not line:
                    break
                logf.write(line)
                logf.flush()
                if line.startswith("@@WB "):
                    # A boot running many tests may take longer than
                    # --timeout in all: the limit is the time to the next
                    # marker (one test's timeout plus a margin for the
                    # teardown between tests), so a hang still fails.
                    deadline = max(deadline, time.time() + args.test_timeout + 120)
                if line.startswith("@@WB BEGIN"):
                    in_test = True
                elif line.startswith("@@WB PASS") or line.startswith("@@WB FAIL"):
                    in_test = False
                if args.verbose:
                    sys.stderr.write(line)
                elif args.show and in_test and not line.startswith("@@WB "):
                    sys.stdout.write(line)
                    sys.stdout.flush()
                elif line.startswith("@@WB "):
                    log(f"{tag}: {line.strip()[5:]} ({time.time() - t0:.1f}s)")
            proc.wait()
        elapsed = time.time() - t0
        verdicts, crashed, done, kernel_bad = parse_log(logpath, names)
        if timed_out:
            log(f"{tag}: timed out (no test marker in time, {time.time() - t0:.0f}s in); log {logpath}")
        return verdicts, names, logpath, crashed, done, kernel_bad, elapsed, timed_out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_log(logpath, names):
    verdicts = {}
    current = None
    crashed = done = False
    kernel_bad = []
    with open(logpath, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith("@@WB BEGIN "):
                current = line.split()[2]
            elif line.startswith("@@WB PASS "):
                n = line.split()[2]
                verdicts[n] = verdicts.get(n, (True, ""))
                current = None
            elif line.startswith("@@WB FAIL "):
                parts = line.split(maxsplit=3)
                verdicts[parts[2]] = (False, parts[3] if len(parts) > 3 else "failed")
                current = None
            elif line.startswith("@@WB CRASH") or "sysrq: Resetting" in line:
                # The marker can be lost in the tty buffer by the reset
                # itself; the kernel's own line proves the cut too.
                crashed = True
            elif line.startswith("@@WB DONE"):
                done = True
            elif BAD_KERNEL.search(line):
                kernel_bad.append(line)
                who = current or (names[-1] if names else "boot")
                verdicts[who] = (False, "kernel reported: " + line.strip()[:160])
    return verdicts, crashed, done, kernel_bad


def report(results, logs):
    passed = sum(1 for ok, _ in results.values() if ok)
    failed = len(results) - passed
    for name, (ok, reason) in results.items():
        print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"  ({reason})"), flush=True)
    for path in logs:
        print(f"  serial log kept: {path}", flush=True)
    return passed, failed


def run_single_boot(args, scripts, disk_dir, tag):
    v, names, logpath, crashed, done, bad, elapsed, timed_out = boot(args, scripts, disk_dir, tag=tag)
    results = {}
    for s, n in zip(scripts, names):
        label = label_of(s)
        if n in v:
            results[label] = v[n]
        elif timed_out:
            results[label] = (False, f"no verdict: guest timed out (hang or too slow)")
        else:
            results[label] = (False, "no verdict: guest stopped (panic or power-off?)")
    keep = [logpath] if any(not ok for ok, _ in results.values()) else []
    if not keep:
        os.unlink(logpath)
    log(f"{tag}: boot took {elapsed:.1f}s")
    return results, keep


def run_multi_boot(args, test_dir, tag):
    """A test spanning several boots on the same, fresh disks."""
    boots = sorted(f for f in os.listdir(test_dir) if re.fullmatch(r"boot\d+\.sh", f))
    boots.sort(key=lambda f: int(f[4:-3]))
    label = label_of(test_dir)
    disk_dir = tempfile.mkdtemp(prefix="wbdisks-", dir=args.disk_tmp)
    keep = []
    try:
        for i, b in enumerate(boots):
            last = i == len(boots) - 1
            v, names, logpath, crashed, done, bad, elapsed, timed_out = boot(
                args, [os.path.join(test_dir, b)], disk_dir, expect_crash=not last, tag=f"{tag}-{b[:-3]}")
            n = names[0]
            if bad:
                keep.append(logpath)
                return {label: (False, f"{b}: kernel reported: {bad[0].strip()[:160]}")}, keep
            if not last:
                if n in v and not v[n][0]:
                    keep.append(logpath)
                    return {label: (False, f"{b}: {v[n][1]}")}, keep
                if not crashed:
                    keep.append(logpath)
                    return {label: (False, f"{b}: expected to end in a power cut (wb_powercut)")}, keep
                os.unlink(logpath)
                continue
            if n in v:
                if not v[n][0]:
                    keep.append(logpath)
                else:
                    os.unlink(logpath)
                return {label: (v[n][0], f"{b}: {v[n][1]}")}, keep
            keep.append(logpath)
            why = "timed out" if timed_out else "no verdict"
            return {label: (False, f"{b}: {why}")}, keep
        return {label: (False, "no boot scripts")}, keep
    finally:
        shutil.rmtree(disk_dir, ignore_errors=True)


def collect(directory, only):
    singles, multis = [], []
    for f in sorted(os.listdir(directory)):
        p = os.path.join(directory, f)
        if only and not any(re.search(o, f) for o in only):
            continue
        if os.path.isdir(p) and any(re.fullmatch(r"boot\d+\.sh", x) for x in os.listdir(p)):
            multis.append(p)
        elif f.endswith(".sh") and f not in ("lib.sh", "init.sh"):
            singles.append(p)
    return singles, multis


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["run", "suite"])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--disk-dir", help="keep disk images here (run mode); created if missing")
    ap.add_argument("--fresh-disks", action="store_true", help="recreate the disk images first")
    ap.add_argument("--disk-tmp", default=None, help="where temporary disk images go")
    ap.add_argument("--backing-mb", type=int, default=int(os.environ.get("WB_BACKING_MB", 512)))
    ap.add_argument("--cache-mb", type=int, default=int(os.environ.get("WB_CACHE_MB", 128)))
    ap.add_argument("--slow-iops", type=int, default=int(os.environ.get("WB_SLOW_IOPS", 200)))
    ap.add_argument("--slow-bps", type=int, default=int(os.environ.get("WB_SLOW_BPS", 150 << 20)))
    ap.add_argument("--fast-iops", type=int, default=int(os.environ.get("WB_FAST_IOPS", 2000)))
    ap.add_argument("--fast-bps", type=int, default=int(os.environ.get("WB_FAST_BPS", 200 << 20)))
    ap.add_argument("--extra-disk", action="append", help="another raw image (vdc, vdd, ...)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--memory-mb", type=int, default=1024)
    ap.add_argument("--kernel-args", default=os.environ.get("WB_KERNEL_ARGS", ""),
                    help="more kernel command line, e.g. brd.rd_size=262144 (the bench's RAM disks)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("WB_GUEST_TIMEOUT", 900)),
                    help="seconds for a boot to start its first test (after that, each test marker gives --test-timeout + 120 s more)")
    ap.add_argument("--test-timeout", type=int, default=300, help="seconds per test script")
    ap.add_argument("--kernel-dir")
    ap.add_argument("--module")
    ap.add_argument("--only", action="append", help="suite: run tests matching this regex")
    ap.add_argument("--expect-crash", action="store_true", help="run: the boot ends in a power cut")
    ap.add_argument("-v", "--verbose", action="store_true", help="copy the serial console to stderr")
    ap.add_argument("--show", action="store_true", help="print the scripts' own output to stdout")
    args = ap.parse_intermixed_args()

    if args.mode == "run":
        if not args.paths:
            ap.error("run needs at least one script")
        disk_dir = args.disk_dir or tempfile.mkdtemp(prefix="wbdisks-")
        os.makedirs(disk_dir, exist_ok=True)
        if args.fresh_disks:
            for f in ("backing.img", "cache.img"):
                if os.path.exists(os.path.join(disk_dir, f)):
                    os.unlink(os.path.join(disk_dir, f))
        try:
            if args.expect_crash:
                v, names, logpath, crashed, done, bad, _, _ = boot(args, args.paths, disk_dir, True, "run")
                ok = crashed and not bad and all(x[0] for x in v.values())
                print(f"{'PASS' if ok else 'FAIL'} power-cut boot (log {logpath})")
                return 0 if ok else 1
            results, keep = run_single_boot(args, args.paths, disk_dir, "run")
        finally:
            if not args.disk_dir:
                shutil.rmtree(disk_dir, ignore_errors=True)
        p, f = report(results, keep)
        print(f"guest: {p} passed, {f} failed")
        return 1 if f else 0

    directory = args.paths[0] if args.paths else os.path.join(ROOT, "tests", "guest")
    singles, multis = collect(directory, args.only)
    results, keep = {}, []
    if singles:
        disk_dir = tempfile.mkdtemp(prefix="wbdisks-", dir=args.disk_tmp)
        try:
            r, k = run_single_boot(args, singles, disk_dir, "suite")
        finally:
            shutil.rmtree(disk_dir, ignore_errors=True)
        results.update(r)
        keep += k
    for m in multis:
        r, k = run_multi_boot(args, m, os.path.basename(m))
        results.update(r)
        keep += k
    p, f = report(results, keep)
    print(f"guest: {p} passed, {f} failed")
    return 1 if f or not results else 0


if __name__ == "__main__":
    sys.exit(main())
