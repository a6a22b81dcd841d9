#!/usr/bin/python3
"""Disks for bench/lazy (P4, P5), made from the demo's boot disk.

    pad_disk.py pad BOOT.qcow2 MIB OUT.qcow2
        OUT: BOOT's guest content, grown to MIB MiB; everything after BOOT's
        own size (the guest never reads it) is random data, so compression
        cannot hide it, and every cluster is allocated.
    pad_disk.py change A.qcow2 PERCENT SKIP_MIB OUT.qcow2
        OUT: a copy of A with PERCENT % of its 1 MiB chunks of the file
        (the v2 standard's default chunk size) rewritten with random data,
        spread evenly; only chunks that lie wholly in guest data clusters past
        guest offset SKIP_MIB MiB are chosen, so the qcow2 stays valid and the
        guest boots as before. Prints the number of chunks rewritten.
Loopback only: no network. Needs qemu-img.
"""
import json
import os
import shutil
import subprocess
import sys

MIB = 1 << 20


def run(*args):
    subprocess.run(args, check=True)


def pad(boot, mib, out):
    raw = out + ".raw"
    run("qemu-img", "convert", "-O", "raw", boot, raw)
    used = os.path.getsize(raw)
    with open(raw, "r+b") as f, open("/dev/urandom", "rb") as rnd:
        f.seek(used)
        for _ in range((mib * MIB - used) // MIB):
            f.write(rnd.read(MIB))
        f.truncate(mib * MIB)
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out)
    os.unlink(raw)


def change(a, percent, skip_mib, out):
    extents = json.loads(subprocess.run(["qemu-img", "map", "-f", "qcow2", "--output=json", a],
                                        check=True, capture_output=True, text=True).stdout)
    host = []  # host ranges [start, end) of guest data past the skip
    for e in extents:
        if not e.get("data") or "offset" not in e or e["start"] + e["length"] <= skip_mib * MIB:
            continue
        cut = max(0, skip_mib * MIB - e["start"])
        host.append((e["offset"] + cut, e["offset"] + e["length"]))
    # host is contiguous per extent; take 1 MiB-aligned chunks of the file inside it
    chunks = [c for s, e in host for c in range((s + MIB - 1) // MIB, e // MIB)]
    total = os.path.getsize(a) // MIB
    want = max(1, total * percent // 100)
    if len(chunks) < want:
        sys.exit(f"pad_disk: only {len(chunks)} chunks of {a} are guest data past {skip_mib} MiB")
    step = len(chunks) / want
    pick = [chunks[int(i * step)] for i in range(want)]
    shutil.copyfile(a, out)
    with open(out, "r+b") as f, open("/dev/urandom", "rb") as rnd:
        for c in pick:
            f.seek(c * MIB)
            f.write(rnd.read(MIB))
    run("qemu-img", "check", "-q", out)
    print(len(pick))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "pad":
        pad(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 6 and sys.argv[1] == "change":
        change(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
