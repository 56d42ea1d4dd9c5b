"""``python -m benchmarks``: run the benchmarks and write the Markdown and JSON reports.

python -m benchmarks                 # everything at full size (make bench)
python -m benchmarks --quick         # smaller sizes, for development
python -m benchmarks --only A,B      # some benchmarks only
python -m benchmarks --skip C        # everything but zappend (no venv needed)
python -m benchmarks --only H --history-commits 100,1000 --history-s3-commits 100
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import icechunk

from benchmarks import (
    distributed,
    growth,
    history,
    levels,
    memory,
    phases,
    reads,
    throughput,
    updates,
    versus_zappend,
    virtual,
    writers,
)
from benchmarks.common import SIZES, Context, git_revision, library_versions, machine_info
from benchmarks.report import Report, Section

BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "A": throughput.run,
    "B": growth.run,
    "C": versus_zappend.run,
    "D": memory.run,
    "E": reads.run,
    "L": levels.run,
    "P": phases.run,
    "W": writers.run,
    "V": virtual.run,
    "H": history.run,
    "X": distributed.run,
    "U": updates.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


def parse_arguments(arguments: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run versioncube's benchmarks (issue 6) and write latest.md and latest.json.",
    )
    parser.add_argument(
        "--size", choices=sorted(SIZES), default="full", help="how big (default: full)"
    )
    parser.add_argument(
        "--quick", action="store_const", const="quick", dest="size", help="same as --size quick"
    )
    parser.add_argument(
        "--only", type=_keys, default=list(BENCHMARKS), help="comma-separated, e.g. A,B,E"
    )
    parser.add_argument("--skip", type=_keys, default=[], help="comma-separated, e.g. C")
    parser.add_argument(
        "--rounds", type=int, help="runs of each A case, the fastest counts (default: by size)"
    )
    parser.add_argument(
        "--trace-memory", action="store_true", help="D: list the biggest Python allocations"
    )
    parser.add_argument(
        "--history-commits",
        type=_sizes,
        help="H: sizes of the local cube, e.g. 100,1000,10000 (default: by size)",
    )
    parser.add_argument(
        "--history-s3-commits",
        type=_sizes,
        help="H: sizes of the cube on S3, e.g. 100,1000; 0 for none (default: by size)",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"report folder (default: {RESULTS})"
    )
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder, kept afterwards (default: a temporary one)"
    )
    return parser.parse_args(arguments)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    return tuple(size for size in sizes if size > 0)


def _keys(text: str) -> list[str]:
    keys = [key.strip().upper() for key in text.split(",") if key.strip()]
    unknown = sorted(set(keys) - set(BENCHMARKS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return keys


def main(arguments: Sequence[str] | None = None) -> Report:
    options = parse_arguments(arguments)
    selected = [key for key in BENCHMARKS if key in options.only and key not in options.skip]
    icechunk.set_logs_filter("error")  # no local-filesystem warning on every open
    started = time.perf_counter()
    header = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks", *(arguments or sys.argv[1:])]),
        "revision": git_revision(Path(__file__).parent),
        "machine": machine_info(),
        "libraries": library_versions(),
    }
    with tempfile.TemporaryDirectory(prefix="versioncube-bench-") as scratch:
        sizes = SIZES[options.size]
        if options.rounds:
            sizes = dataclasses.replace(sizes, throughput_rounds=options.rounds)
        if options.history_commits is not None:
            sizes = dataclasses.replace(sizes, history_commits=options.history_commits)
        if options.history_s3_commits is not None:
            sizes = dataclasses.replace(sizes, history_s3_commits=options.history_s3_commits)
        workdir = options.workdir or Path(scratch)
        context = Context(sizes, workdir, trace_memory=options.trace_memory)
        if "C" in selected:
            context.zappend_python = versus_zappend.zappend_python()
            header["zappend_libraries"] = versus_zappend.zappend_versions(context.zappend_python)
        sections = []
        for key in selected:
            print(f"{key} ...", end=" ", flush=True, file=sys.stderr)
            began = time.perf_counter()
            sections.append(BENCHMARKS[key](context))
            print(f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
    header["seconds"] = time.perf_counter() - started
    header["load_average_at_end"] = round(os.getloadavg()[0], 2)
    report = Report(options.size, sections, header)
    for path in report.write(options.out):
        print(f"wrote {path}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
