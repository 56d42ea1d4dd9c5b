"""Racing commits: writer processes commit to one branch at the same moment, and the branch is
counted afterwards. Icechunk checks a commit against the branch tip on the client, which
catches writers that take turns; writers that commit at the same moment are kept apart only by
the server's conditional writes (If-Match / If-None-Match). A server without them loses
commits that Icechunk reported as made.

A module here (not a test file) so that the writer processes, started with ``spawn``, import it
by its name, and little more than Icechunk with it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import time
from collections.abc import Mapping, Sequence
from typing import Any

import icechunk
import zarr

from versioncube.store.target import parse_target

MAX_ATTEMPTS = 200  # per commit: a writer that can never commit fails instead of hanging
RACE_TIMEOUT = 240  # seconds for the whole race


@dataclasses.dataclass(frozen=True)
class RaceCount:
    """What a race left on the branch."""

    attempted: int  # commits the writers set out to make
    reported: int  # commits Icechunk told a writer it had made
    on_branch: int  # commits the branch holds afterwards
    lost: int  # reported, but not on the branch
    groups_at_tip: int  # the writers' groups the tip holds (one per reported commit)
    conflicts_retried: int  # commits refused because another writer was first, then retried


def _writer(
    uri: str,
    options: Mapping[str, Any],
    name: str,
    commits: int,
    unconditional: bool,
    start: Any,
    results: Any,
) -> None:
    """Commit ``commits`` new groups to main, each retried with a fresh session on conflict;
    report the snapshot ids that Icechunk said were committed."""
    config = None
    if unconditional:
        settings = icechunk.StorageSettings(
            unsafe_use_conditional_update=False, unsafe_use_conditional_create=False
        )
        config = icechunk.RepositoryConfig(storage=settings)
    repo = icechunk.Repository.open(parse_target(uri, options).storage(), config=config)
    start.wait(RACE_TIMEOUT)  # every writer commits from the same moment on
    committed: list[str] = []
    conflicts = 0
    for number in range(commits):
        for _ in range(MAX_ATTEMPTS):
            session = repo.writable_session("main")
            zarr.open_group(session.store, mode="r+").create_group(f"{name}-{number}")
            try:
                committed.append(session.commit(f"{name} commit {number}"))
                break
            except icechunk.ConflictError:
                conflicts += 1
        else:
            raise RuntimeError(f"{name} could not commit in {MAX_ATTEMPTS} attempts")
    results.put((committed, conflicts))


def race(
    uri: str,
    options: Mapping[str, Any],
    *,
    writers: int,
    commits: int,
    unconditional: bool = False,
) -> RaceCount:
    """Create a repository at ``uri``; ``writers`` processes each commit ``commits`` times to
    its main branch at the same moment. ``unconditional`` switches Icechunk's conditional
    writes off in the writers (to show that the count can find lost commits)."""
    repo = icechunk.Repository.create(parse_target(uri, options).storage())
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    base = session.commit("the root group the writers add to")
    before = {snapshot.id for snapshot in repo.ancestry(snapshot_id=base)}
    context = multiprocessing.get_context("spawn")  # Icechunk hangs in forked children
    start, results = context.Barrier(writers), context.Queue()
    processes = [
        context.Process(
            target=_writer,
            args=(uri, dict(options), f"w{n}", commits, unconditional, start, results),
        )
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    try:
        reports = _reports(results, processes)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():  # a failed race leaves no writer behind
                process.kill()
                process.join()
    reported = {snapshot for committed, _ in reports for snapshot in committed}
    on_branch = {snapshot.id for snapshot in repo.ancestry(branch="main")} - before
    tip = zarr.open_group(repo.readonly_session("main").store, mode="r")
    return RaceCount(
        attempted=writers * commits,
        reported=len(reported),
        on_branch=len(on_branch),
        lost=len(reported - on_branch),
        groups_at_tip=len(list(tip.group_keys())),
        conflicts_retried=sum(conflicts for _, conflicts in reports),
    )


def _reports(results: Any, processes: Sequence[Any]) -> list[tuple[list[str], int]]:
    """Each writer's report; a writer that died fails the race at once instead of at the
    timeout."""
    reports: list[tuple[list[str], int]] = []
    deadline = time.monotonic() + RACE_TIMEOUT
    while len(reports) < len(processes):
        try:
            reports.append(results.get(timeout=1))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a race writer failed (exit code {failed[0]})") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"the race took more than {RACE_TIMEOUT} s") from None
    return reports


# -- schema changes racing appends --------------------------------------------------------------

#: The cube the schema races start from: days from this one, small fields.
RACE_FIRST_DAY = "2024-03-01"
RACE_SHAPE = (6, 12)
APPEND_PAUSE = 0.4  # seconds before each append of the schema race


@dataclasses.dataclass(frozen=True)
class SchemaRace:
    """What a race of appends and add-variable commits left on the branch."""

    reported: list[str]  # snapshot ids the writers were told they committed
    on_branch: set[str]  # the branch's commits after the race (the created cube's excluded)
    refused: int  # appends refused because a variable was added first (then given it)


def _schema_writer(
    uri: str, options: Mapping[str, Any], role: str, count: int, start: Any, results: Any
) -> None:
    """Append ``count`` days after the cube's first three, or add ``count`` variables (values
    for the first day only), each one commit through versioncube."""
    import numpy as np
    import pandas as pd

    from versioncube import SliceValidationError, open_cube
    from versioncube.samples import sample_slice

    cube = open_cube(uri, storage_options=dict(options))
    days = pd.date_range(RACE_FIRST_DAY, periods=3 + count)
    start.wait(RACE_TIMEOUT)
    done = []
    refused = 0
    for number in range(count):
        if role == "append":
            time.sleep(APPEND_PAUSE)  # spread out, so that adds land between appends
            day = sample_slice(days[3 + number], shape=RACE_SHAPE)
            while True:
                try:
                    result: Any = cube.append(day)
                    break
                except SliceValidationError:  # a variable was added since: give it, as NaN
                    refused += 1
                    if refused > MAX_ATTEMPTS:
                        raise
                    added = set(cube.to_xarray().data_vars) - set(day.data_vars)
                    day = day.assign({name: day.tas * np.nan for name in added})
        else:
            values = sample_slice(days[0], shape=RACE_SHAPE).tas
            result = cube.add_variable(f"v{number}", values)
        assert result.snapshot_id is not None
        done.append(result.snapshot_id)
    results.put((done, refused))


def race_schema_changes(
    uri: str, options: Mapping[str, Any], *, appends: int, variables: int
) -> SchemaRace:
    """Create a cube of three days at ``uri``; then one process appends ``appends`` days while
    another adds ``variables`` variables, from the same moment on."""
    import pandas as pd

    from versioncube import open_cube
    from versioncube.samples import sample_slice

    cube = open_cube(uri, storage_options=dict(options))
    for day in pd.date_range(RACE_FIRST_DAY, periods=3):
        cube.append(sample_slice(day, shape=RACE_SHAPE))
    before = {snapshot.id for snapshot in cube.repository.ancestry(branch="main")}
    context = multiprocessing.get_context("spawn")  # Icechunk hangs in forked children
    start, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(
            target=_schema_writer, args=(uri, dict(options), role, count, start, results)
        )
        for role, count in (("append", appends), ("add", variables))
    ]
    for process in processes:
        process.start()
    try:
        reports = _reports(results, processes)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
    repo = open_cube(uri, storage_options=dict(options)).repository
    on_branch = {snapshot.id for snapshot in repo.ancestry(branch="main")} - before
    reported = [snapshot for done, _ in reports for snapshot in done]
    return SchemaRace(reported, on_branch, sum(refused for _, refused in reports))
