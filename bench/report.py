"""Turns bench/run's raw timings into bench/RESULTS.md (printed on stdout).

usage: report.py TIMES P3_REGDISK_BYTES P3_COPY_BYTES P3_IMAGE_BYTES CORPUS_MIB [LAZY_TIMES]
TIMES holds lines "SCENARIO/DISK/TOOL WALL_SECONDS PEAK_RSS_KIB"; LAZY_TIMES bench/lazy's
lines (P4, P4b, P5), rendered by lazy_report.py. Each generated part is printed between
results_merge.py's markers, which bench/run uses to replace only the parts it measured.
"""
import collections
import os
import platform
import statistics
import sys

import lazy_report
from results_merge import TABLE_SCENARIOS, block

times, p3r, p3c, img, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rows = collections.defaultdict(list)
for line in open(times):
    name, wall, rss = line.split()
    rows[name].append((float(wall), int(rss)))


def med(name):
    return statistics.median(w for w, _ in rows[name]) if rows.get(name) else float("nan")


def rss_mib(name):
    return max((r for _, r in rows[name]), default=0) // 1024


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
runs = max((len(v) for k, v in rows.items() if not k.startswith(("P3/", "P4m/"))), default=0)
targets = {"P1": "≤ 0.33", "P1z": "≤ 0.5", "P2": "≤ 0.33", "P2f": "≤ 1.3", "P2p": "≤ 0.35"}
print("# Benchmark results\n")
if any(not k.startswith("P3/") for k in rows):
    with block("table"):
        print(f"Machine: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.platform()}; corpus {size} MiB "
              f"per disk; median of {runs} alternating runs per row, page cache dropped before each.\n")
        print("| scenario | disk | regdisk s | peer | peer s | ratio | regdisk peak RSS MiB | target |")
        print("|---|---|---|---|---|---|---|---|")
        for scen in (s for s in TABLE_SCENARIOS if s in targets):
            for disk in ["os.raw", "random.raw"]:
                ours = f"{scen}/{disk}/regdisk"
                for peer in sorted(k for k in rows if k.startswith(f"{scen}/{disk}/") and k != ours):
                    r = med(ours) / med(peer)
                    print(f"| {scen} | {disk} | {med(ours):.2f} | {peer.split('/')[-1]} | {med(peer):.2f} | {r:.2f} "
                          f"| {rss_mib(ours)} | {targets[scen]} |")
        for step in ["push", "pull"]:
            name = f"P4m/{step}/regdisk"
            if name in rows:
                print(f"| P4m | 4 GiB random, {step} | {med(name):.2f} | — | — | — | {rss_mib(name)} | ≤ 64 MiB RSS |")
else:
    print(f"Machine: {cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.platform()}.")
if "P3/prepare/regdisk" in rows:
    pr = med("P3/prepare/regdisk") * 1000
    pf = med("P3/prepare/regdisk-full") * 1000
    pc = med("P3/prepare/plain-copy") * 1000
    print()
    with block("P3"):
        print(f"P3, 100 VMs from one {img / 2**20:.1f} MiB qcow2 image: regdisk uses {p3r / 2**20:.1f} MiB on disk "
              f"(target ≤ image + 100 MiB = {img / 2**20 + 100:.1f} MiB), a plain copy per VM {p3c / 2**20:.1f} MiB; "
              f"per-VM prepare after the first (`regdisk-node prepare`; {len(rows['P3/prepare/regdisk']) // 100} "
              f"runs of 100): median {pr:.1f} ms (target ≤ 20 ms; "
              f"`regdisk prepare`, which loads libvirt: {pf:.1f} ms), plain copy {pc:.1f} ms.")
if len(sys.argv) > 6:
    lazy_report.render(sys.argv[6])
