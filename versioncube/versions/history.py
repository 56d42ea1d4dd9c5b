"""A branch's history along its label axis: which labels each commit wrote, changed or removed,
where the tags and branch heads are, and where the labels have gaps (``Cube.history``,
``Cube.plot_history``, ``versioncube show --plot``).

Each commit is placed by its record alone, its operation and its label range, never by
comparing versions, so that drawing a long history reads no data but the tip's labels.
Operations are told apart by name (:data:`versioncube.display.palette.OPERATION_COLORS`):
appends, commits of references, materialize today, and the updates and deletes to come, whose
records name the labels they replaced or removed.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

import icechunk
import numpy as np

from versioncube.display import html
from versioncube.display.format import plural
from versioncube.display.json import JsonValue, to_json
from versioncube.display.results import Result
from versioncube.versions.coverage import Coverage, label_coverage
from versioncube.versions.frames import log_frame, stored_label
from versioncube.versions.groups import read_groups
from versioncube.versions.log import Log, branch_log

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class HistoryCommit:
    """One commit as the history picture draws it."""

    snapshot_id: str
    written_at: dt.datetime
    operation: str  # as ``log`` shows it: "append", "append (refs)", "delete", "-" (foreign)
    slice: str
    first_label: Any  # the first and last label the commit's record names (None: none)
    last_label: Any
    rows: tuple[int, int] | None
    tags: tuple[str, ...]
    heads: tuple[str, ...]  # branches whose tip this commit is

    @property
    def short_id(self) -> str:
        return self.snapshot_id[:12]


@dataclasses.dataclass(frozen=True)
class CubeHistory(Result):
    """The commits of a branch (oldest first) and the gaps in its tip's labels."""

    target: str
    branch: str
    append_dim: str
    commits: list[HistoryCommit]
    coverage: Coverage | None  # the labels of the newest commit shown (None: no data)
    log: Log = dataclasses.field(repr=False, compare=False, default_factory=Log)

    def operations(self) -> dict[str, int]:
        """How many commits of each operation, in the order they first occur."""
        return dict(collections.Counter(commit.operation for commit in self.commits))

    def headline(self) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.operations().items())
        text = f"{self.branch} of {self.target}: {plural(len(self.commits), 'commit')}"
        return text + (f" ({counts})" if counts else "")

    def marks(self) -> list[str]:
        """``tag v1 at ABC...``, ``branch dev at DEF...``: what the picture labels."""
        found = []
        for commit in self.commits:
            found += [f"tag {name} at {commit.short_id}" for name in commit.tags]
            found += [f"branch {name} at {commit.short_id}" for name in commit.heads]
        return found

    def describe(self) -> str:
        lines = [self.headline()]
        lines += self.marks()
        if self.coverage is not None:
            lines.append(self.coverage.headline())
            lines += [f"  gap: {gap.span()} ({plural(gap.count, 'step')})" for gap in self.gaps]
        return "\n".join(lines)

    @property
    def gaps(self) -> list[Any]:
        return self.coverage.gaps if self.coverage is not None else []

    def to_json(self) -> JsonValue:
        return {
            "target": self.target,
            "branch": self.branch,
            "append_dim": self.append_dim,
            "operations": self.operations(),
            "commits": to_json(self.commits),
            "coverage": to_json(self.coverage),
        }

    def to_pandas(self) -> pd.DataFrame:
        """The commits as a DataFrame, newest first (as ``Cube.log().to_pandas()``)."""
        return log_frame(self.log)

    def _repr_html_(self) -> str:
        counts = [(html.operation_badge(name), count) for name, count in self.operations().items()]
        parts = [html.section("Operations", html.table(("operation", "commits"), counts))]
        if self.marks():
            parts.append(html.section("Tags and branches", html.lines(self.marks())))
        if self.coverage is not None:
            gaps = html.lines(
                [self.coverage.headline()]
                + [f"gap: {gap.span()} ({plural(gap.count, 'step')})" for gap in self.gaps]
            )
            parts.append(html.section("Labels", gaps, count=len(self.gaps)))
        commits = self.log.html_table()
        parts.append(html.section("Commits", commits, count=len(self.commits), open=False))
        return html.card(self.html_kind(), self.headline(), "", *parts)

    def plot(self, ax: Any = None) -> Any:
        """The history along the label axis (a matplotlib Figure; needs ``versioncube[plot]``):
        a bar per commit over the labels its record names, coloured by operation (hatched for
        references, updates and deletes), tags and branch heads written beside their commits,
        and the gaps in the labels shaded in red across the picture."""
        from versioncube.display.plots import draw_history

        gaps = [(gap.first, gap.end) for gap in self.gaps]
        return draw_history(
            self.commits,
            gaps,
            step=_typical_width(self.coverage),
            title=f"{self.target}: branch {self.branch}, {plural(len(self.commits), 'commit')}",
            xlabel=self.append_dim,
            ax=ax,
        )


def cube_history(
    repo: icechunk.Repository,
    snapshot_id: str,
    *,
    target: str,
    branch: str,
    append_dim: str,
    step: str | float | None = None,
) -> CubeHistory:
    """The history leading to ``snapshot_id`` and the gaps in its labels by ``step`` (see
    :mod:`versioncube.versions.coverage`; None: the labels' most common spacing)."""
    log = branch_log(repo, snapshot_id, append_dim=append_dim)
    heads: dict[str, list[str]] = {}
    for name in repo.list_branches():
        heads.setdefault(repo.lookup_branch(name), []).append(name)
    commits = []
    for entry in reversed(log):
        record = entry.record
        labels = record.labels if record is not None else None
        commits.append(
            HistoryCommit(
                snapshot_id=entry.snapshot_id,
                written_at=entry.written_at,
                operation=entry.operation,
                slice=entry.slice,
                first_label=stored_label(labels[0]) if labels else None,
                last_label=stored_label(labels[1]) if labels else None,
                rows=record.index_range if record is not None else None,
                tags=entry.tags,
                heads=tuple(sorted(heads.get(entry.snapshot_id, []), key=_main_first)),
            )
        )
    coverage = None
    if log:
        at_tip = tip_labels(repo, snapshot_id, append_dim, target)
        if at_tip is not None:
            coverage = label_coverage(at_tip, append_dim, snapshot_id, step)
    return CubeHistory(target, branch, append_dim, commits, coverage, log)


def tip_labels(
    repo: icechunk.Repository, snapshot_id: str, append_dim: str, where: str
) -> np.ndarray | None:
    """The append labels of a version (None when it has no label coordinate)."""
    groups = read_groups(repo, snapshot_id, where=where, chunks=None, create_default_indexes=False)
    dataset = groups.datasets[groups.reference(append_dim)]
    if append_dim not in dataset.variables:
        return None
    values: np.ndarray = dataset.variables[append_dim].values
    return values


def _main_first(name: str) -> tuple[bool, str]:
    return (name != "main", name)


def _typical_width(coverage: Coverage | None) -> Any:
    """How wide one label is drawn: the coverage's step (the first present period's length)."""
    if coverage is None or not coverage.runs:
        return None
    run = coverage.runs[0]
    return (run.end - run.first) / run.count if run.count else None
