"""Merges a fresh report of bench/run into an existing bench/RESULTS.md.

usage: results_merge.py FRESH RESULTS
Every generated part of a report sits between two marker lines, "<!-- bench:NAME begin -->" and
"<!-- bench:NAME end -->" (NAME: table, P3, P4, P5, P6). RESULTS keeps everything outside its
markers (the title, the readings written by hand) and every block FRESH does not have (scenarios
not run) byte for byte. A block of FRESH replaces RESULTS' block of that name, or goes at the end
when RESULTS has none. The table is merged by row: FRESH's rows replace RESULTS' rows of the same
scenarios (first cell), the others stay; its header line (machine, runs) is FRESH's only when no
old row stays. RESULTS missing or empty: FRESH is written as it is. RESULTS is rewritten at once
(a new file renamed over it), and not at all when its markers do not pair up.
"""
import contextlib
import os
import re
import sys

TABLE_SCENARIOS = ("P1", "P1z", "P2", "P2f", "P2p", "P4m")  # the table's rows, in this order
BLOCK = re.compile(r"^<!-- bench:(\S+) begin -->\n(.*?)^<!-- bench:\1 end -->$\n?", re.M | re.S)
MARKER = re.compile(r"^<!-- bench:", re.M)
ROW = re.compile(r"\| (\S+) \|")


@contextlib.contextmanager
def block(name):
    """Prints the lines printed inside the with statement between NAME's markers."""
    print(f"<!-- bench:{name} begin -->")
    yield
    print(f"<!-- bench:{name} end -->")


def split(text, what):
    """TEXT as [text outside blocks, (name, whole block, content), text, ...]; exits on bad markers."""
    parts, pos = [], 0
    for m in BLOCK.finditer(text):
        parts += [text[pos:m.start()], (m.group(1), m.group(0), m.group(2))]
        pos = m.end()
    parts.append(text[pos:])
    names = [p[0] for p in parts if isinstance(p, tuple)]
    if any(MARKER.search(p) for p in parts if isinstance(p, str)) or len(set(names)) != len(names):
        sys.exit(f"results_merge: {what}: a bench marker without its pair, or a block twice; not merged")
    return parts


def scenario(line):
    m = ROW.match(line)
    return m.group(1) if m and m.group(1) != "scenario" else None


def merge_table(old, new):
    """The table block: OLD's rows of the scenarios NEW lacks, NEW's rows, in TABLE_SCENARIOS order."""
    def rows_and_rest(text):
        lines = text.splitlines(keepends=True)
        return [l for l in lines if scenario(l)], [l for l in lines if not scenario(l)]
    old_rows, old_rest = rows_and_rest(old)
    new_rows, new_rest = rows_and_rest(new)
    ran = {scenario(l) for l in new_rows}
    kept = [l for l in old_rows if scenario(l) not in ran]
    rest = old_rest if kept else new_rest
    if kept and old_rest != new_rest:
        print("results_merge: the table's header kept from the earlier run, not the new rows' "
              + "".join(l for l in new_rest if l not in old_rest), file=sys.stderr, end="")
    rank = {s: i for i, s in enumerate(TABLE_SCENARIOS)}
    rows = sorted(kept + new_rows, key=lambda l: rank.get(scenario(l), len(rank)))
    return "".join(rest + rows)


def merge(old, fresh):
    new = {p[0]: p for p in split(fresh, "the fresh report") if isinstance(p, tuple)}
    out = []
    for p in split(old, "the results"):
        if isinstance(p, tuple) and p[0] in new:
            name, _, content = new.pop(p[0])
            if name == "table":
                content = merge_table(p[2], content)
            p = (name, f"<!-- bench:{name} begin -->\n{content}<!-- bench:{name} end -->\n")
        out.append(p if isinstance(p, str) else p[1])
    text = "".join(out)
    for _, whole, _ in new.values():
        text += ("" if text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n") + whole
    return text


def main(fresh_path, results_path):
    fresh = open(fresh_path, encoding="utf-8").read()
    old = open(results_path, encoding="utf-8").read() if os.path.exists(results_path) else ""
    text = merge(old, fresh) if old.strip() else fresh
    tmp = f"{results_path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, results_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    main(sys.argv[1], sys.argv[2])
