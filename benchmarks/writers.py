"""W. Concurrent writers: appends/s with 1 and with 4 writer processes, on local disk and on S3.

Overlapping cron jobs or a retrying scheduler run the same command at once: every writer here
is a process of its own (``python -m benchmarks.writers``) appending the same list of NetCDF
files to one new cube. Each imports versioncube, says it is ready, and waits for the start time
the benchmark sends once all are ready, so imports are not timed and all writers begin at the
same moment. The wall time runs from that moment until the last writer has finished its list;
appends/s is the number of slices (each appended once) over it. Each writer also reports which
slices it appended and which it skipped (another writer had appended them), and how many of its
commits were refused because another writer moved the tip first (then retried on the new tip).

The S3 target is a SeaweedFS server the benchmark starts on 127.0.0.1
(versioncube/testing/seaweed.py, the tests' server) and stops by its PID at the end. Afterwards
every cube must hold exactly one commit per slice, in the order of the list: anything else
fails the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from benchmarks.common import Context
from benchmarks.report import Comparison, Ref, Result, Section
from benchmarks.workloads import Workload
from versioncube.testing.seaweed import S3_BUCKET, SeaweedServer

KEY = "W"
ROOT = Path(__file__).resolve().parent.parent
WRITER_COUNTS = (1, 4)
STORAGES = ("local", "S3")
START_DELAY = 0.5  # seconds from "all writers ready" to the start, for the start time to arrive
TIMEOUT = 900  # seconds a case may take before its writers are killed


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one case's writers append: a URI and its storage options."""

    uri: str
    storage_options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Run:
    """One case run: its wall time and what the writers reported."""

    seconds: float
    reports: list[dict[str, Any]]

    def total(self, name: str) -> int:
        return sum(report[name] for report in self.reports)


def case_name(storage: str, writers: int) -> str:
    return f"{storage}, {writers} writer{'' if writers == 1 else 's'}"


def run(context: Context) -> Section:
    sizes = context.sizes
    files = Workload(context, "writers", sizes.writers_slices, sizes.writers_shape).files()
    fastest: dict[str, Run] = {}
    logs = context.target("writers", "logs")
    with (
        SeaweedServer(context.target("writers", "seaweedfs")) as server,
        WriterPool(max(WRITER_COUNTS), files[0], logs) as pool,
    ):
        for round_number in range(sizes.writers_rounds):  # interleaved, so load changes hit all
            for storage in STORAGES:
                for writers in WRITER_COUNTS:
                    name = case_name(storage, writers)
                    folder = f"{storage.lower()}-{writers}-{round_number}"
                    if storage == "local":
                        target = Target(str(context.target("writers", folder)), {})
                    else:
                        uri = f"s3://{S3_BUCKET}/{folder}-{uuid.uuid4().hex}"
                        target = Target(uri, server.options)
                    done = pool.append_together(target, files, writers)
                    check_exactly_once(target, files, done)
                    if name not in fastest or done.seconds < fastest[name].seconds:
                        fastest[name] = done
    results = [_result(name, done, len(files)) for name, done in fastest.items()]
    comparisons = [
        Comparison(
            f"{storage}: {max(WRITER_COUNTS)} writers / 1 writer, appends/s",
            Ref(KEY, case_name(storage, max(WRITER_COUNTS)), "appends_per_s"),
            Ref(KEY, case_name(storage, 1), "appends_per_s"),
        )
        for storage in STORAGES
    ]
    nlat, nlon = sizes.writers_shape
    description = (
        f"{len(files)} NetCDF files of 1 x {nlat} x {nlon} (tas and pr, float32) appended to a "
        f"new cube by 1 writer process, or by {max(WRITER_COUNTS)} processes each given the "
        "same list at the same moment; on local disk and on SeaweedFS (S3) on 127.0.0.1. "
        "Wall time from the common start until the last writer finished its list (imports "
        f"excluded); appends/s = {len(files)} slices / wall time; the fastest of "
        f'{sizes.writers_rounds} interleaved runs of each case. "skipped": slices a writer '
        'found appended by another; "conflicts": commits refused because another writer '
        "moved the tip first, then retried. Every cube is checked afterwards: one commit per "
        "slice, in order."
    )
    return Section(KEY, "Concurrent writers", description, results, comparisons)


class WriterPool:
    """Writer processes, started once so that imports are not timed, given one list per case.

    Each case gives the same job to the first ``count`` writers with a start time half a
    second ahead; every job opens a new cube object, as a new run of ``versioncube append``
    would. Processes still running when the pool closes (or fails) are killed by their PID.
    """

    def __init__(self, count: int, warm_up: Path, logs: Path) -> None:
        self.count = count
        self.warm_up = warm_up
        self.logs = logs
        self.processes: list[subprocess.Popen[str]] = []

    def __enter__(self) -> WriterPool:
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            for number in range(self.count):
                with open(self.logs / f"writer-{number}.log", "w") as log:
                    self.processes.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "benchmarks.writers", str(self.warm_up)],
                            cwd=ROOT,
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            stderr=log,
                            text=True,
                        )
                    )
            for number in range(self.count):
                if self._answer(number) != "ready":
                    self._fail(number, "did not say it was ready")
        except BaseException:
            self.close(kill=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, *details: object) -> None:
        self.close(kill=kind is not None)

    def close(self, *, kill: bool) -> None:
        """End the writers: after their current job, or at once (``kill``, on errors)."""
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            if kill and process.poll() is None:
                process.kill()  # by PID: only the processes this pool started
            with contextlib.suppress(OSError):
                process.stdin.close()  # no more jobs: the writer exits
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()

    def append_together(self, target: Target, files: Sequence[Path], count: int) -> Run:
        """The first ``count`` writers append ``files`` to ``target`` from the same moment."""
        start_at = time.time() + START_DELAY
        job = {
            "uri": target.uri,
            "storage_options": dict(target.storage_options),
            "paths": [str(path) for path in files],
            "start_at": start_at,
        }
        for process in self.processes[:count]:
            assert process.stdin is not None
            process.stdin.write(json.dumps(job) + "\n")
            process.stdin.flush()
        reports = [json.loads(self._answer(number)) for number in range(count)]
        late = max(report["started"] for report in reports) - start_at
        if late > START_DELAY:
            raise RuntimeError(f"a writer started {late:.2f} s after the common start")
        return Run(max(report["finished"] for report in reports) - start_at, reports)

    def _answer(self, number: int) -> str:
        """The next line writer ``number`` prints, within :data:`TIMEOUT` seconds."""
        stdout = self.processes[number].stdout
        assert stdout is not None
        if not select.select([stdout], [], [], TIMEOUT)[0]:
            self._fail(number, f"said nothing for {TIMEOUT} s")
        line = stdout.readline()
        if not line:
            self._fail(number, f"exited with status {self.processes[number].wait()}")
        return line.strip()

    def _fail(self, number: int, what: str) -> NoReturn:
        log = (self.logs / f"writer-{number}.log").read_text()[-3000:]
        raise RuntimeError(f"writer process {number} {what}:\n{log}")


def check_exactly_once(target: Target, files: Sequence[Path], done: Run) -> None:
    """Fail loudly unless the cube holds exactly one commit per file, in the list's order."""
    import versioncube

    cube = versioncube.open_cube(target.uri, storage_options=target.storage_options)
    log = cube.log()
    by_commit = {snapshot: identity for identity, snapshot in cube.appended_slices().items()}
    slices = [by_commit.get(entry.snapshot_id, entry.message) for entry in reversed(log)]
    expected = [str(path.resolve()) for path in files]
    if slices != expected or done.total("appended") != len(files):
        raise RuntimeError(
            f"{target.uri}: {len(log)} commits for {len(files)} slices, the writers reported "
            f"{done.total('appended')} appended; commits in order: {slices}"
        )


def _result(name: str, done: Run, slices: int) -> Result:
    writers = len(done.reports)
    metrics = {
        "seconds": done.seconds,
        "appends_per_s": slices / done.seconds,
        "slices": slices,
        "writers": writers,
        "skipped": done.total("skipped"),
        "conflicts": done.total("conflicts"),
    }
    summary = (
        f"{slices / done.seconds:.1f} appends/s ({done.seconds:.2f} s for {slices} slices"
        f"{'' if writers == 1 else f' by {writers} writers'})"
    )
    if writers > 1:
        summary += f"; {metrics['skipped']} skipped, {metrics['conflicts']} conflicts retried"
    return Result(name, metrics, summary)


# -- the writer process -------------------------------------------------------------------------


def serve(warm_up: str) -> None:
    """The writer process: import once, then append one list per job line read from stdin."""
    import icechunk

    import versioncube
    import versioncube.write.append

    icechunk.set_logs_filter("error")
    # one append to an in-memory cube first: the lazy imports and first-use costs of the whole
    # pipeline (NetCDF backend, codecs, Icechunk's runtime) are paid before any timed start
    versioncube.open_cube(f"memory://warm-up-{os.getpid()}").append(warm_up)
    attempts: list[int] = []  # commit attempts of each slice this writer wrote in this job
    commit_change = versioncube.write.append.commit_change

    def counted(*args: Any, **kwargs: Any) -> Any:
        outcome = commit_change(*args, **kwargs)
        attempts.append(outcome.attempts)
        return outcome

    versioncube.write.append.commit_change = counted  # type: ignore[assignment]
    print("ready", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        attempts.clear()
        time.sleep(max(0.0, job["start_at"] - time.time()))
        started = time.time()
        cube = versioncube.open_cube(job["uri"], storage_options=job["storage_options"])
        statuses = [cube.append(path).status for path in job["paths"]]
        report = {
            "started": started,
            "finished": time.time(),
            "appended": statuses.count("appended"),
            "skipped": statuses.count("skipped"),
            "conflicts": sum(attempts) - len(attempts),
        }
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
