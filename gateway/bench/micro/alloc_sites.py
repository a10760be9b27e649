#!/usr/bin/env python3
"""Allocation sites per benchmark, from package-benchmark's folded allocation stacks.

    alloc_sites.py RUN_LOG FOLDED_DIR [TOP]

RUN_LOG is the text output of `benchmark run --export-allocation-stacks` (its
"Allocations: target:name — N iterations, …" lines give the iteration counts), FOLDED_DIR the
folder of `<target>.<benchmark>.allocations.folded` files. For each benchmark it prints the
mallocs per operation grouped by the innermost frame of this repository's code (Sources/…)
with the standard-library operations that allocated there (Array growth, String decoding…).
Frames of inlined code can carry the file:line of their caller: read the function name first.
"""
import collections
import os
import re
import sys


def site(frames):
    """(repository frame, what allocated) for one stack, innermost repository frame first."""
    for i in range(len(frames) - 1, -1, -1):
        f = frames[i]
        if " at " in f and "/Sources/" in f:
            inner = [g for g in frames[i + 1:] if not re.fullmatch(r"0x[0-9a-f]+|null", g)]
            what = inner[0] if inner else "(directly)"
            what = re.sub(r"^specialized |^static | in \S+$| at \S+$", "", what)
            where = f.replace("specialized ", "")
            where = re.sub(r" at .*/Sources/", "  Sources/", where)
            return where, what
    symbolic = [g for g in frames if not re.fullmatch(r"0x[0-9a-f]+|null", g)]
    if len(symbolic) <= 1:
        return "(no symbols: C code, e.g. protobuf-c's unpack, or the runtime)", ""
    return re.sub(r" in \S+$| at \S+$", "", symbolic[-1]), ""


def main():
    log, folder = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    iterations = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"Allocations: (\S+?):(.+?) — ([\d,]+) iterations", line)
            if m:
                iterations[m.group(1) + "." + m.group(2)] = int(m.group(3).replace(",", ""))
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".allocations.folded"):
            continue
        bench = name[: -len(".allocations.folded")]
        n = iterations.get(bench)
        sites = collections.Counter()
        how = collections.defaultdict(list)
        total = 0
        with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not count.isdigit():
                    continue
                where, what = site(stack.split(";"))
                sites[where] += int(count)
                if what and what not in how[where]:
                    how[where].append(what)
                total += int(count)
        if not n:
            print(f"{bench}: {total} allocations (iterations unknown)")
            continue
        print(f"\n{bench}: {total / n:.1f} mallocs/op")
        for where, count in sites.most_common(top):
            via = f"   <- {' / '.join(how[where])}" if how[where] else ""
            print(f"  {count / n:6.1f}  {where}{via}")


if __name__ == "__main__":
    main()
