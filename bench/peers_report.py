"""Renders bench/peers' lines (P6, P6b) as the results' section (printed on stdout).

usage: peers_report.py PEERS_TIMES RATE_MIBPS
"""
import sys

times, rate = sys.argv[1], sys.argv[2]
image_mib = image_bytes = 0
p6, p6b, skips = {}, {}, []
for line in open(times):
    f = line.split()
    if f[0] == "IMAGE":
        image_mib, image_bytes = f[1], int(f[2])
    elif f[0] == "P6":
        p6[f[1]] = (int(f[2]), int(f[3]), float(f[4]), int(f[5]))
    elif f[0] == "P6B":
        p6b[f[1]] = (int(f[2]), float(f[3]), int(f[4]))
    elif f[0] == "SKIP":
        skips.append(f"{f[1]}: {' '.join(f[2:])}")


def cell(rows, mode, fmt):
    return fmt(rows[mode]) if mode in rows else "—"


def failed(rows):
    bad = sum(r[-1] for r in rows.values())
    return f" ({bad} node runs failed: see errors.log)" if bad else ""


print("\n## P6, P6b: nodes sharing chunks (bench/peers)\n")
print(f"A {image_mib} MiB v2 image ({image_bytes} blob bytes; the demo's boot disk padded with random data), "
      f"a registry link capped at {rate} MiB/s (tc tbf), nodes in network namespaces (tests/tools/netsim) "
      "starting at once; peers: every node runs `regdisk peer` and gets `--peers` (all) `--peer-self`.\n")
print("| scenario | nodes | without peers | with peers | goal |")
print("|---|---|---|---|---|")
if p6:
    n = next(iter(p6.values()))[0]
    ratio = lambda r: f"{r[1] / image_bytes:.2f}"
    print(f"| P6 registry egress ÷ image | {n} | {cell(p6, 'none', ratio)} | {cell(p6, 'peers', ratio)} | ≤ 1.5 |")
    slow = lambda r: f"{r[2]:.1f}"
    print(f"| P6 slowest `prepare` s | {n} | {cell(p6, 'none', slow)} | {cell(p6, 'peers', slow)} | — |")
if p6b:
    n = next(iter(p6b.values()))[0]
    marker = lambda r: f"{r[1]:.1f}"
    print(f"| P6b slowest time to the guest marker s | {n} | {cell(p6b, 'none', marker)} | "
          f"{cell(p6b, 'peers', marker)} | — |")
notes = skips + ([failed(p6).strip()] if failed(p6) else []) + ([failed(p6b).strip()] if failed(p6b) else [])
for note in notes:
    print(f"\n- {note}")
