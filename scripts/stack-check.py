#!/usr/bin/env python3
"""Worst-case stack depth of dm-writeboost.ko's own code, from its object code.

Usage: stack-check.py MODULE.ko [--budget BYTES] [--top N]

For every function of the module it takes the frame objdump shows (pushes in
the prologue, the first `sub $N,%rsp`, the return address) and follows the
direct calls and tail jumps into other functions of the module (a call the
module leaves to the kernel is resolved by a relocation and counts 0 here).
The deepest chain from any function is the module's share of a kernel stack
(16 KiB on x86-64): the DM ioctl or table load above it and the allocator
(with direct reclaim) below it need the rest. Indirect calls are not
followed: the module's threads, targets and callbacks are entry points of
their own.

Exit status: 0 if the deepest chain is within the budget, 1 if not, 2 on a
usage or tool error. Prints the deepest chains either way.
"""
import argparse
import re
import subprocess
import sys

FN = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\s+(\S+)\s*(.*)$")
RELOC = re.compile(r"^\s*[0-9a-f]+: R_X86_64_(?:PLT32|PC32)\s+([^\s+-]+)")
TARGET = re.compile(r"^[0-9a-f]+ <([^>+]+)>$")


def parse(ko):
    try:
        out = subprocess.run(["objdump", "-dr", "--no-show-raw-insn", ko], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"stack-check: objdump of {ko} failed: {e}")
    frame, calls = {}, {}
    fn = None
    pending = None  # (kind, displayed target) of the last call/jmp
    prologue = True
    for line in out.splitlines():
        m = FN.match(line)
        if m:
            fn = m.group(1)
            frame[fn] = 8  # the return address
            calls[fn] = set()
            pending, prologue = None, True
            continue
        if fn is None:
            continue
        r = RELOC.match(line)
        if r:
            if pending is not None:
                calls[fn].add(r.group(1))  # a call resolved at load time
                pending = None
            continue
        if pending is not None:
            # The previous call had no relocation: its displayed target is it.
            calls[fn].add(pending)
            pending = None
        m = INSN.match(line)
        if not m:
            continue
        op, arg = m.group(1), m.group(2).strip()
        if prologue and op == "push":
            frame[fn] += 8
            continue
        if prologue and op == "sub" and arg.startswith("$0x") and arg.endswith(",%rsp"):
            frame[fn] += int(arg[3:-5], 16)
            prologue = False
            continue
        if op in ("call", "jmp"):
            prologue = False
            t = TARGET.match(arg)
            if t and t.group(1) != fn:
                pending = t.group(1)
            elif op == "call":
                pending = ""  # placeholder: a relocation names the callee
            continue
        if op not in ("endbr64", "mov", "lea", "xor", "nop", "nopl", "nopw"):
            prologue = False
    for f in calls:
        calls[f].discard("")
    return frame, calls


def deepest(frame, calls):
    memo = {}
    sys.setrecursionlimit(1 << 16)

    def go(f, path):
        if f in memo:
            return memo[f]
        best = (0, [])
        for c in calls.get(f, ()):
            if c not in frame or c in path:
                continue
            d = go(c, path | {f})
            if d[0] > best[0]:
                best = d
        r = (frame[f] + best[0], [f] + best[1])
        memo[f] = r
        return r

    return sorted(((go(f, frozenset()), f) for f in frame), key=lambda x: -x[0][0])


def short(sym):
    """The readable tail of a Rust v0 symbol (its last two identifiers)."""
    if not sym.startswith("_R"):
        return sym
    names, i, prev = [], 2, ""
    while i < len(sym):
        ch = sym[i]
        if ch.isdigit():
            j = i
            while sym[j].isdigit():
                j += 1
            n = int(sym[i:j])
            if j < len(sym) and sym[j] == "_":  # a leading "_" escapes a digit
                j += 1
            names.append(sym[j:j + n])
            i, prev = j + n, ""
            continue
        if ch == "B" or (ch == "s" and prev in ("C", "N")):
            # a back-reference or a disambiguator: base-62 up to "_"
            i = sym.find("_", i)
            i = len(sym) if i < 0 else i + 1
            prev = ""
            continue
        prev = ch
        i += 1
    names = [x for x in names if x and x not in ("dm_writeboost", "kernel", "core", "alloc")]
    return "::".join(names[-2:]) if names else sym


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ko")
    ap.add_argument("--budget", type=int, default=7680, help="bytes the module's deepest chain may take (default 7680)")
    ap.add_argument("--top", type=int, default=3)
    a = ap.parse_args()
    frame, calls = parse(a.ko)
    if not frame:
        sys.exit(f"stack-check: no functions found in {a.ko}")
    res = deepest(frame, calls)
    seen = set()
    shown = 0
    for (depth, chain), f in res:
        key = tuple(chain[1:])
        if key in seen:
            continue
        seen.add(key)
        print(f"{depth:6d} bytes: " + " -> ".join(f"{short(c)}[{frame[c]}]" for c in chain))
        shown += 1
        if shown >= a.top:
            break
    worst = res[0][0][0]
    if worst > a.budget:
        print(f"stack-check: FAIL: the deepest chain takes {worst} bytes, over the budget of {a.budget}")
        return 1
    print(f"stack-check: ok: the deepest chain takes {worst} bytes (budget {a.budget})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
