#!/usr/bin/env python3
"""report.py: turns the measurements of bench/compare.sh into a markdown table.

  report.py DATA BINS...

DATA has one line per run: `<measure>:<client>:<bins> <wall_us> <rss_kib> <time_e>`
(`time_e` is /usr/bin/time's %e, kept for cross-checking). The median of the runs of each
(measure, client, bins) is shown. Prints the table, the raw runs, and on the last line
`SCALE <ours> <ngclient>`: the 4096-bin / 256-bin ratios of the cold full load (`-` when
not measured).
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict

CLIENTS = ("ours", "ngclient", "tough")
MEASURES = (
    ("full", "cold full load, every role"),
    ("one", "cold refresh + 1 target"),
    ("warm", "warm reload, nothing changed"),
    ("chg1", "reload after 1 bin changed"),
    ("chg10", "reload after 10 bins changed"),
)


def main() -> int:
    data_file, bins = sys.argv[1], sys.argv[2:]
    runs: dict[tuple[str, str, str], list[tuple[float, int]]] = defaultdict(list)
    with open(data_file) as f:
        for line in f:
            key, wall_us, rss, _e = line.split()
            measure, client, nbins = key.split(":")
            runs[(measure, client, nbins)].append((int(wall_us) / 1e6, int(rss)))

    def median(measure: str, client: str, nbins: str) -> tuple[float, float, int] | None:
        r = runs.get((measure, client, nbins))
        if not r:
            return None
        return (statistics.median(w for w, _ in r),
                statistics.median(m for _, m in r) / 1024, len(r))

    def cell(m: tuple[float, float, int] | None) -> str:
        if m is None:
            return "–"
        wall, rss, n = m
        note = "" if n >= 3 else f" ({n} run{'s' if n > 1 else ''})"
        return f"{wall:.3f} s, {rss:.0f} MiB{note}"

    def ratio(a: tuple[float, float, int] | None, b: tuple[float, float, int] | None) -> str:
        if a is None or b is None:
            return "–"
        t = f"{a[0] / b[0]:.1f}x" if b[0] > 0 else "∞"
        return f"{t} time, {a[1] / b[1]:.1f}x RSS"

    print("| measurement | bins | tuf-mirror (ours) | python-tuf ngclient | tough "
          "| ngclient / ours | tough / ours |")
    print("| --- | ---: | --- | --- | --- | --- | --- |")
    for measure, label in MEASURES:
        for nbins in bins:
            cells = {c: median(measure, c, nbins) for c in CLIENTS}
            if all(v is None for v in cells.values()):
                continue
            print(f"| {label} | {nbins} | {cell(cells['ours'])} | {cell(cells['ngclient'])} "
                  f"| {cell(cells['tough'])} | {ratio(cells['ngclient'], cells['ours'])} "
                  f"| {ratio(cells['tough'], cells['ours'])} |")

    print()
    print("Every run (wall seconds / peak RSS MiB):")
    print()
    for (measure, client, nbins), r in sorted(runs.items()):
        values = ", ".join(f"{w:.3f}/{m / 1024:.0f}" for w, m in r)
        print(f"- {measure} {client} {nbins}: {values}")

    def scale(client: str) -> str:
        small, big = median("full", client, "256"), median("full", client, "4096")
        return f"{big[0] / small[0]:.2f}" if small and big else "-"

    print()
    print(f"SCALE {scale('ours')} {scale('ngclient')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
