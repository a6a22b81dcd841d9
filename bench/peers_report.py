"""Renders bench/peers' lines (P6, P6b) as the results' section (printed on stdout).

usage: peers_report.py PEERS_TIMES RATE_MIBPS
"""
import sys

from results_merge import block

times, rate = sys.argv[1], sys.argv[2]
image_mib = image_bytes = 0
rows = {"P6": {}, "P6B": {}}  # scenario -> mode -> (nodes, egress bytes, slowest s, failed runs)
skips = []
for line in open(times):
    f = line.split()
    if f[0] == "IMAGE":
        image_mib, image_bytes = f[1], int(f[2])
    elif f[0] == "P6":  # MODE NODES EGRESS SLOWEST FAILED
        rows["P6"][f[1]] = (int(f[2]), int(f[3]), float(f[4]), int(f[5]))
    elif f[0] == "P6B":  # MODE NODES SLOWEST FAILED EGRESS
        rows["P6B"][f[1]] = (int(f[2]), int(f[5]), float(f[3]), int(f[4]))
    elif f[0] == "SKIP":
        skips.append(f"{f[1]}: {' '.join(f[2:])}")


def ratio(r):
    return f"{r[1] / image_bytes:.2f}"


def seconds(r):
    return f"{r[2]:.1f}"


def row(scenario, what, fmt, goal):
    modes = rows[scenario]
    if not modes:
        return
    n = next(iter(modes.values()))[0]
    cells = [fmt(modes[m]) if m in modes else "—" for m in ("none", "peers")]
    print(f"| {scenario.replace('B', 'b')} {what} | {n} | {cells[0]} | {cells[1]} | {goal} |")


print()
with block("P6"):
    print("## P6, P6b: nodes sharing chunks (bench/peers)\n")
    print(f"A {image_mib} MiB v2 image ({image_bytes} blob bytes; the demo's boot disk padded with random data), "
          f"a registry link capped at {rate} MiB/s (tc tbf), nodes in network namespaces (tests/tools/netsim) "
          "starting at once; peers: every node runs `regdisk peer` and gets `--peers` (all) `--peer-self`.\n")
    print("| scenario | nodes | without peers | with peers | goal |")
    print("|---|---|---|---|---|")
    row("P6", "registry egress ÷ image", ratio, "≤ 1.5")
    row("P6", "slowest `prepare` s", seconds, "—")
    row("P6B", "slowest time to the guest marker s", seconds, "—")
    row("P6B", "registry egress until the last guest is off ÷ image", ratio, "—")
    for scenario, modes in rows.items():
        bad = sum(r[3] for r in modes.values())
        if bad:
            skips.append(f"{scenario.replace('B', 'b')}: {bad} node runs failed (see peers/errors.log)")
    for note in skips:
        print(f"\n- {note}")
