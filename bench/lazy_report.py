"""Renders bench/lazy's lines (P4, P4b, P5) as Markdown tables, for report.py.

Lines: "LAZY 0|1", "DISK MIB BYTES", "P4 MIB RATE MODE MARKER_S CONSOLE_S DOWN_AT_MARKER DOWN_AT_EXIT RC",
"P5CHUNKS MIB N", "P5 MODE SECONDS DOWN_BYTES". Medians over the runs; a boot that printed no
marker (MARKER_S -1) or failed (RC not 0) is shown as failed, never as a time.
"""
import collections
import statistics

from results_merge import block

MIB = 1 << 20
P4_MODES = {1: [("v1", "v1alpha, full pull"), ("v2", "v2, lazy (run's default)"),
                ("held", "v2, lazy, fill held off (serve.json edited)"), ("boot", "boot alone (disk on the node)")],
            0: [("v1", "v1alpha, full pull"), ("v2", "v2, full pull (no lazy serving in this build)"),
                ("boot", "boot alone (disk on the node)")]}


def render(path):
    disk, p4, p5, p5chunks, lazy = {}, collections.defaultdict(list), collections.defaultdict(list), None, 1
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "LAZY":
            lazy = int(f[1])
        elif f[0] == "DISK":
            disk[int(f[1])] = int(f[2])
        elif f[0] == "P4" and len(f) == 9:
            p4[(int(f[1]), int(f[2]), f[3])].append((float(f[4]), float(f[5]), int(f[6]), int(f[7]), int(f[8])))
        elif f[0] == "P5CHUNKS":
            p5chunks = (int(f[1]), int(f[2]))
        elif f[0] == "P5":
            p5[f[1]].append((float(f[2]), int(f[3])))
    if p4:
        print()
        with block("P4"):
            print_p4(disk, p4, P4_MODES[lazy], lazy)
    if p5:
        print()
        with block("P5"):
            print_p5(disk, p5, p5chunks)


def ok(runs):
    return [r for r in runs if r[0] >= 0 and r[4] == 0]


def print_p4(disk, p4, modes, lazy):
    print("## P4, P4b: `regdisk run` to the guest's boot marker (bench/lazy)\n")
    print("Seconds from `regdisk run SPEC --console` on an empty node to the guest's `REGDISK-BOOTED`, "
          "the registry behind bench/rate_proxy.py capping the node's total rate; MiB the proxy sent "
          "before the marker (P4b), and that as a share of the disk file. \"boot alone\": a second VM "
          "of the v1alpha image on the node that already holds its disk (the boot's own time). \"fill held "
          "off\": the lazy entry prepared first (its index and head not counted), its server stopped, "
          "its chunks emptied and serve.json's fillRate set to 1 byte/s, as regdisk has no flag for it "
          "yet: the bytes the boot itself needs.\n")
    print("| disk | link MiB/s | image | run → marker s | run → first console s | console → marker s "
          "| MiB before marker | % of disk | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mib in sorted({k[0] for k in p4}):
        for rate in sorted({k[1] for k in p4 if k[0] == mib}, reverse=True):
            for mode, label in modes:
                runs = p4.get((mib, rate, mode))
                if not runs:
                    continue
                good = ok(runs)
                if not good:
                    print(f"| {mib} MiB | {rate} | {label} | failed | — | — | — | — | {len(runs)} |")
                    continue
                t = statistics.median(r[0] for r in good)
                c = statistics.median(r[1] for r in good)
                b = statistics.median(r[2] for r in good)
                share = f"{100 * b / disk[mib]:.1f}" if mib in disk else "?"
                d = statistics.median(r[0] - r[1] for r in good)
                print(f"| {mib} MiB | {rate} | {label} | {t:.2f} | {c:.2f} | {d:.2f} | {b / MIB:.1f} | {share} "
                      f"| {len(good)} |")
    # the boot alone at the same size and rate: measured next to the lazy boots, under the same load
    boot = {k[:2]: statistics.median(r[0] for r in ok(v)) for k, v in p4.items() if k[2] == "boot" and ok(v)}
    lines = []
    for (mib, rate, mode), v in sorted(p4.items()):
        if lazy and mode in ("v2", "held") and ok(v) and (mib, rate) in boot:
            t = statistics.median(r[0] for r in ok(v))
            lines.append(f"{mib} MiB at {rate} MiB/s{', fill held off' if mode == 'held' else ''}: "
                         f"{t - boot[(mib, rate)]:+.2f} s")
    if lines:
        print("\nv2 lazy minus the boot alone at the same size and rate (goal: under 3 s, flat in disk size): " + "; ".join(lines) + ".")


def print_p5(disk, p5, chunks):
    print("## P5: delta pull (bench/lazy)\n")
    if chunks:
        mib, n = chunks
        print(f"Version B of the {mib} MiB disk rewrites {n} of its 1 MiB chunks (1 %). `regdisk prepare` of B "
              f"through bench/rate_proxy.py at 100 MiB/s; MiB the proxy sent.\n")
    full = statistics.median(b for _, b in p5["full"]) if p5.get("full") else None
    print("| prepare of B | s | MiB through the proxy | ÷ full pull | goal |")
    print("|---|---|---|---|---|")
    labels = {"delta": "on a node holding A", "delta-lazy": "`--lazy` on a node holding A, until the fill completes",
              "full": "on an empty node (full pull)"}
    for mode in ["delta", "delta-lazy", "full"]:
        runs = p5.get(mode)
        if not runs:
            continue
        t = statistics.median(s for s, _ in runs)
        b = statistics.median(b for _, b in runs)
        ratio = f"{100 * b / full:.1f} %" if full else "—"
        goal = "≤ 5 %" if mode != "full" else ""
        print(f"| {labels[mode]} | {t:.2f} | {b / MIB:.1f} | {ratio} | {goal} |")
