"""The benchmark suite: the collection beside the runbook's own procedures, same data, one table.

    python -m bench [--size full|tiny] [--only NAME] [--repeat N] [--json reports/bench.json]

`make bench` runs it at full size (minutes); `make test` runs every scenario at tiny size (tests/integration/
test_bench_smoke.py) so the suite cannot rot. Figures, not verdicts: a row says where ours misses its target and why.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

# Scenario modules, in the order of the table. Each exposes SCENARIOS: a list of bench._scenario.Scenario.
SCENARIO_MODULES = (
    "bench.morning_check",
    "bench.phones_quota",
    "bench.ban_phone",
    "bench.dr_redis",
    "bench.archive",
    "bench.dlq_trim",
    "bench.bullmq_adds",
    "bench.job_search",
    "bench.job_ops",
    "bench.dr_database",
    # The lab of real hosts (tests/support/lab.py): over SSH, local connection, the runbook on the DB host.
    "bench.lab_ssh",
)


def load_scenarios(only=None):
    scenarios = []
    for name in SCENARIO_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        for scenario in getattr(module, "SCENARIOS", ()):
            if only is None or only in scenario.name:
                scenarios.append(scenario)
    return scenarios


def format_table(rows):
    header = ("scenario", "baseline median", "ours median", "ratio", "our figure", "target", "met",
              "worst PING", "peak RSS", "note")
    lines = [header]
    for row in rows:
        ratio = ("{0:.1f}x".format(row["baseline_s"] / row["ours_s"])
                 if row.get("baseline_s") and row.get("ours_s") else "-")
        lines.append((row["scenario"], _seconds(row.get("baseline_s")), _seconds(row.get("ours_s")), ratio,
                      row.get("figure", "-"), row.get("target", "-"),
                      {True: "yes", False: "NO"}.get(row.get("met"), "-"),
                      "{0:.0f} ms".format(row["worst_ping_ms"]) if row.get("worst_ping_ms") is not None else "-",
                      "{0:.0f} MB".format(row["peak_rss_mb"]) if row.get("peak_rss_mb") else "-",
                      row.get("note", "")))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append(" | ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            out.append("-+-".join("-" * width for width in widths))
    return "\n".join(out)


def _seconds(value):
    if value is None:
        return "-"
    return "{0:.3f} s".format(value) if value < 10 else "{0:.1f} s".format(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("full", "tiny"), default="full")
    parser.add_argument("--only")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--json", default="reports/bench.json")
    args = parser.parse_args(argv)
    scenarios = load_scenarios(args.only)
    if not scenarios:
        print("no benchmark scenario matched")
        return 1
    rows = []
    for scenario in scenarios:
        repeat = args.repeat or (1 if args.size == "tiny" else scenario.repeat)
        print("running {0} ({1}, {2}x)".format(scenario.name, args.size, repeat), file=sys.stderr, flush=True)
        rows.extend(scenario.run(args.size, repeat))
    print(format_table(rows))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"size": args.size, "rows": rows}, indent=2, default=str))
        print("\nJSON: {0}".format(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
