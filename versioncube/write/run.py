"""A run: appending a list of slices in order, one commit each, and what it did.

:func:`append_slices` is the core of ``versioncube.append``, ``versioncube.append_slices`` and
the ``append`` command: it applies the run's ``logging`` and ``profiling`` settings, appends each
slice and collects a :class:`RunSummary`. When a slice fails, the error carries the summary of
what was committed before it (``error.summary``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

import xarray as xr

from versioncube.display import html, palette
from versioncube.display.format import plural
from versioncube.display.json import JsonValue, to_json
from versioncube.display.results import Result
from versioncube.errors import ConfigError, SliceError, VersionCubeError
from versioncube.slices.identity import SliceLike
from versioncube.slices.sources import SliceSource, provides_dataset
from versioncube.store.commit import CommitOptions
from versioncube.write.append import Appender, AppendResult
from versioncube.write.distributed import ChunkProgress
from versioncube.write.parallel import ParallelRun
from versioncube.write.profiling import profiled
from versioncube.write.run_logging import logging_for_run
from versioncube.write.virtual import append_item

#: More skipped slices than this are summarised in one line unless a verbose listing is asked.
MAX_SKIPPED_LISTED = 5
#: A run's HTML form shows its slices unfolded up to this many (folded, one click away, beyond).
OPEN_ROWS = 10

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RunSummary(Result):
    """The results of appending a list of slices (so far, while the run goes on)."""

    results: list[AppendResult] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    dry_run: bool = False

    @property
    def appended(self) -> int:
        """Slices appended (or, in a dry run, that would be)."""
        return sum(result.status in ("appended", "would append") for result in self.results)

    @property
    def skipped(self) -> int:
        return sum(result.status == "skipped" for result in self.results)

    @property
    def failing(self) -> int:
        """Slices a dry run found would fail (a real run stops at the first)."""
        return sum(result.status == "would fail" for result in self.results)

    def tally(self) -> str:
        """``appended 2, skipped 1`` (``would append 2, would fail 1, ...`` in a dry run)."""
        verb = "would append" if self.dry_run else "appended"
        failing = f", would fail {self.failing}" if self.failing else ""
        return f"{verb} {self.appended}{failing}, skipped {self.skipped}"

    def headline(self) -> str:
        """The closing line: ``appended 2 slices, skipped 1 (already in the cube), 0.3 s``."""
        verb = "would append" if self.dry_run else "appended"
        failing = f", would fail {self.failing}" if self.failing else ""
        return (
            f"{verb} {plural(self.appended, 'slice')}{failing}, skipped {self.skipped} "
            f"(already in the cube), {self.elapsed:.1f} s"
        )

    def describe(self, *, verbose: bool = False) -> str:
        """Each slice that would be appended, the skipped ones (listed when there are few or
        ``verbose``, else summarised in one line), and the headline."""
        skipped = [result for result in self.results if result.status == "skipped"]
        list_skipped = verbose or len(skipped) <= MAX_SKIPPED_LISTED
        lines = [
            result.describe()
            for result in self.results
            if result.status in ("would append", "would fail")
            or (result.status == "skipped" and list_skipped)
        ]
        if not list_skipped:
            lines.append(
                f"skipped {len(skipped)} slices already in the cube: {skipped[0].slice_name} .. "
                f"{skipped[-1].slice_name} (--verbose lists each)"
            )
        return "\n".join([*lines, self.headline()])

    def to_json(self) -> JsonValue:
        return {
            "appended": self.appended,
            "skipped": self.skipped,
            "failing": self.failing,
            "dry_run": self.dry_run,
            "elapsed_seconds": round(self.elapsed, 3),
            "results": to_json(self.results),
        }

    def _repr_html_(self) -> str:
        columns = ["status", "slice", "labels", "snapshot"]
        rows: list[list[object]] = [
            [result.status, result.slice_name, result.record.extent() if result.record else "",
             html.code((result.snapshot_id or "")[:12])]
            for result in self.results
        ]  # fmt: skip
        if self.failing:
            columns.append("why it would fail")
            for row, result in zip(rows, self.results, strict=True):
                row.append(result.error or "")
        table = html.table(columns, rows)
        slices = html.section("Slices", table, count=len(self.results), open=len(rows) <= OPEN_ROWS)
        return html.card(
            self.html_kind(),
            "dry run" if self.dry_run else "run",
            self.headline(),
            slices,
            accent=palette.DAMAGE if self.failing else palette.ACCENT,
        )


def as_slice_list(slices: Iterable[SliceLike] | SliceLike) -> Iterable[SliceLike]:
    """One slice given alone (a path, a Dataset, a SliceSource or context manager that
    provides one) is a list of one."""
    alone = (str, os.PathLike, xr.Dataset, xr.DataTree, SliceSource)
    if isinstance(slices, alone) or provides_dataset(slices):
        return [cast(SliceLike, slices)]
    return cast(Iterable[SliceLike], slices)


def append_slices(
    appender: Appender,
    slices: Iterable[SliceLike] | SliceLike,
    *,
    dry_run: bool = False,
    logging_setting: Any = None,
    profiling_setting: Any = None,
    on_result: Callable[[AppendResult], None] | None = None,
    options: CommitOptions | None = None,
    announce: Callable[[str], None] | None = None,
    on_chunks: ChunkProgress | None = None,
) -> RunSummary:
    """Append each slice in order, one commit each (see the module docstring).

    A real run stops at the first slice that fails. A dry run goes on and gives every slice
    its verdict (a failing slice is left out of what the later ones are checked against, as
    if it was removed from the list), then raises the first failure, carrying the summary.
    On a dask cluster (``dask_scheduler``, ``dask_workers`` or an active client) dask-backed
    slices are written by the workers (``on_chunks`` reports their chunks), and with
    ``parallel`` the workers open, check and write the next slices while this process commits
    (:mod:`versioncube.write.parallel`); ``announce`` gets a line naming a cluster started for
    the run.
    """
    summary = RunSummary(dry_run=dry_run)
    started = time.perf_counter()
    first_failure: list[SliceError] = []
    try:
        with (
            logging_for_run(logging_setting),
            profiled(profiling_setting),
            (
                contextlib.nullcontext(None)
                if dry_run
                else appender.on_cluster(announce, on_chunks)
            ) as cluster,
        ):
            store = appender.store
            logger.info("appending to %s (branch %s)", store.where, store.branch)
            items = as_slice_list(slices)
            if appender.parallel and not dry_run:
                if cluster is None:
                    raise ConfigError(
                        "parallel appends need a dask cluster: give --workers N or --scheduler "
                        "ADDRESS (config dask_workers, dask_scheduler), or start a "
                        "distributed.Client first"
                    )
                commit = options or appender.commit_options
                results = ParallelRun(
                    appender,
                    cluster,
                    commit,
                    lambda item: append_item(appender, item, options=options),
                ).run(items)
            else:
                results = _serial(appender, items, dry_run, options, first_failure)
            for result in results:
                logger.info("%s", result.describe())
                summary.results.append(result)
                if on_result is not None:
                    on_result(result)
                summary.elapsed = time.perf_counter() - started
            summary.elapsed = time.perf_counter() - started
            logger.info("%s", summary.headline())
        if first_failure:
            raise first_failure[0]
    except (VersionCubeError, KeyboardInterrupt) as error:
        summary.elapsed = time.perf_counter() - started
        error.summary = summary  # type: ignore[union-attr]
        raise
    return summary


def _serial(
    appender: Appender,
    items: Iterable[SliceLike],
    dry_run: bool,
    options: CommitOptions | None,
    failures: list[SliceError],
) -> Iterator[AppendResult]:
    """Each slice appended in turn by this process (a dry run's failures noted in
    ``failures`` and given as verdicts). A real run of a list of copied slices reads the next
    file while it appends the current one (:mod:`versioncube.slices.read_ahead`)."""
    ahead = appender.read_ahead
    following = None  # the items after each one, for a list (a generator is never read early)
    listed = isinstance(items, Sequence) and not isinstance(items, str)
    if listed and not dry_run and not appender.virtual:
        following = itertools.islice(items, 1, None)
    try:
        for item in items:
            if following is not None:
                ahead.upcoming(next(following, None))
            try:
                yield append_item(appender, item, dry_run=dry_run, options=options)
            except SliceError as error:
                if not dry_run:
                    raise
                failures.append(error)
                yield AppendResult(error.slice_name, "", "would fail", None, None, error.reason)
    finally:
        ahead.close()
