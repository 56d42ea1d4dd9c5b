"""Pictures of cubes: a history along the label axis, coverage, label changes, a difference map.

Each function draws plain data (label ranges, runs, a DataArray) that the versions layer
prepares, into a new matplotlib Figure or into the ``ax`` given, and returns the Figure.
matplotlib is an optional extra (``pip install 'versioncube[plot]'``), imported here on first
use only, so that ``versioncube --help`` and reading cubes never pay for it.

Figures are made without pyplot (no global state, no GUI backend, safe in scripts and
servers). They show themselves in Jupyter as a PNG (``_repr_png_``), once, whichever backend a
notebook uses; ``fig.savefig("history.png")`` writes them.

What is drawn carries a ``gid`` naming it (``commits:append``, ``gap``, ``tag:v1``,
``head:main``, ``coverage:missing``, ``change:added``), so that a test, or a user, can find the
parts of a picture without looking at pixels.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from versioncube.display import palette
from versioncube.errors import MissingDependencyError

if TYPE_CHECKING:
    import datetime as dt

    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: How operations are hatched: commits that do not write new rows of their own stand out.
HATCHES = {
    "append (refs)": "//",
    "materialize": "..",
    "upsert": "\\\\",
    "update": "\\\\",
    "replace": "\\\\",
    "time_series": "\\\\",
    "insert": "++",
    "delete": "xx",
    "add-variable": "||",
    "drop-variable": "--",
}
#: Rows of commits are labelled one by one up to this many commits.
LABELLED_COMMITS = 40
BAR_HEIGHT = 0.7


class HistoryRow(Protocol):
    """What the history picture needs of a commit (see versioncube.versions.history)."""

    @property
    def snapshot_id(self) -> str: ...
    @property
    def written_at(self) -> dt.datetime: ...
    @property
    def operation(self) -> str: ...
    @property
    def first_label(self) -> Any: ...
    @property
    def last_label(self) -> Any: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def heads(self) -> tuple[str, ...]: ...


def require_matplotlib() -> None:
    """Import matplotlib, or say how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise MissingDependencyError(
            "pictures need matplotlib: pip install 'versioncube[plot]'"
        ) from error


@functools.cache
def _figure_class() -> type[Figure]:
    from matplotlib.figure import Figure

    class CubeFigure(Figure):
        """A Figure that shows itself in notebooks as a PNG without pyplot."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

    return CubeFigure


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    """The axes to draw into: the one given, or a new Figure's."""
    require_matplotlib()
    if ax is not None:
        return ax.get_figure(root=True), ax  # type: ignore[return-value]
    figure = _figure_class()(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


class _LabelAxis:
    """Labels (datetimes or numbers) as x positions: matplotlib's day numbers for datetimes."""

    def __init__(self, values: Sequence[Any]):
        self.dates = any(isinstance(value, np.datetime64) for value in values)

    def x(self, value: Any) -> float:
        if self.dates:
            from matplotlib.dates import date2num

            return float(date2num(np.datetime64(value, "ns")))  # type: ignore[no-untyped-call]
        return float(value)

    def width(self, step: Any) -> float:
        """A step (a timedelta for datetimes) in x units; one unit when there is none."""
        if step is None:
            return 1.0
        if self.dates:
            return float(np.timedelta64(step, "ns") / np.timedelta64(1, "D"))
        return float(step)

    def finish(self, ax: Axes, xlabel: str) -> None:
        if self.dates:
            from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

            locator = AutoDateLocator()  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)


def draw_history(
    commits: Sequence[HistoryRow],
    gaps: Sequence[tuple[Any, Any]],
    *,
    step: Any,
    title: str,
    xlabel: str,
    ax: Axes | None = None,
) -> Figure:
    """A bar per commit (oldest at the bottom) over the labels its record names, coloured and
    hatched by operation, with tags and branch heads beside it, and the ``gaps`` (label ranges
    ``[start, end)``) shaded across the picture."""
    height = min(10.0, max(3.0, 1.6 + 0.22 * len(commits)))
    figure, ax = _axes(ax, (10.0, height))
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    labels = [label for commit in commits for label in (commit.first_label, commit.last_label)]
    axis = _LabelAxis([label for label in labels if label is not None])
    width = axis.width(step)
    known = [axis.x(label) for label in labels if label is not None]
    known += [axis.x(end) for _, end in gaps]
    whole = (min(known), max(known) + width) if known else (0.0, 1.0)
    bars: dict[str, list[list[tuple[float, float]]]] = {}
    ends = []
    for row, commit in enumerate(commits):
        if commit.first_label is None:  # no label range: the commit is drawn across the cube
            left, right = whole
        else:
            left, right = axis.x(commit.first_label), axis.x(commit.last_label) + width
        top, bottom = row + BAR_HEIGHT / 2, row - BAR_HEIGHT / 2
        corners = [(left, bottom), (left, top), (right, top), (right, bottom)]
        bars.setdefault(commit.operation, []).append(corners)
        ends.append(right)
    order = list(palette.OPERATION_COLORS)
    handles = []
    for operation in sorted(bars, key=lambda name: order.index(name) if name in order else 99):
        color = palette.operation_color(operation)
        hatch = HATCHES.get(operation)
        collection = PolyCollection(
            bars[operation], facecolors=color, edgecolors="white", linewidths=0.4, hatch=hatch
        )
        collection.set_gid(f"commits:{operation}")
        ax.add_collection(collection)
        handles.append(Patch(facecolor=color, edgecolor="white", hatch=hatch, label=operation))
    for start, end in gaps:
        ax.axvspan(axis.x(start), axis.x(end), color=palette.GAP, alpha=0.16, lw=0, gid="gap")
    if gaps:
        handles.append(Patch(facecolor=palette.GAP, alpha=0.3, label="missing labels"))
    for row, (commit, right) in enumerate(zip(commits, ends, strict=True)):
        offset = 4.0
        for name in commit.heads:
            ax.annotate(
                name,
                (right, row),
                xytext=(offset, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                fontweight="bold",
                gid=f"head:{name}",
                bbox={"boxstyle": "round,pad=0.2", "fc": "none", "ec": palette.ACCENT},
            )
            offset += 7.0 * len(name) + 10.0
        for name in commit.tags:
            ax.annotate(
                f"\u25c6 {name}",
                (right, row),
                xytext=(offset, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=palette.WARNING,
                gid=f"tag:{name}",
            )
            offset += 6.0 * len(name) + 18.0
    ax.set_ylim(-0.8, max(len(commits), 1) - 0.2)
    ax.set_xlim(whole[0] - 0.02 * (whole[1] - whole[0]), whole[1] + 0.18 * (whole[1] - whole[0]))
    if len(commits) <= LABELLED_COMMITS:
        ax.set_yticks(
            range(len(commits)),
            [f"{commit.snapshot_id[:8]} {commit.written_at:%m-%d %H:%M}" for commit in commits],
            fontsize=7,
        )
    ax.set_ylabel("commits, oldest at the bottom")
    axis.finish(ax, xlabel)
    ax.set_title(title, fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return figure


def draw_coverage(
    runs: Sequence[tuple[bool, Any, Any, int]], *, title: str, xlabel: str, ax: Axes | None = None
) -> Figure:
    """Runs of present and missing steps, ``(present, start, end, steps)``, as one band."""
    figure, ax = _axes(ax, (10.0, 1.8))
    axis = _LabelAxis([start for _, start, _, _ in runs])
    for present, start, end, _ in runs:
        color = palette.PRESENT if present else palette.GAP
        state = "present" if present else "missing"
        ax.axvspan(
            axis.x(start), axis.x(end), color=color, alpha=0.75, lw=0, gid=f"coverage:{state}"
        )
    if runs:
        ax.set_xlim(axis.x(runs[0][1]), axis.x(runs[-1][2]))
    ax.set_yticks([])
    axis.finish(ax, xlabel)
    ax.set_title(title, fontsize=9)
    return figure


def draw_label_changes(
    spans: Sequence[tuple[str, Any, Any, int]], *, title: str, ax: Axes | None = None
) -> Figure:
    """Label ranges that changed between two versions, ``(kind, first, last, count)``, one
    lane per kind (added, removed, rewritten), each label one step wide."""
    kinds = list(dict.fromkeys(kind for kind, *_ in spans))
    figure, ax = _axes(ax, (10.0, 1.2 + 0.5 * max(len(kinds), 1)))
    axis = _LabelAxis([value for _, first, last, _ in spans for value in (first, last)])
    steps = [
        (axis.x(last) - axis.x(first)) / (count - 1) for _, first, last, count in spans if count > 1
    ]
    width = min(steps) if steps else axis.width(np.timedelta64(1, "D") if axis.dates else None)
    colors = {"added": palette.OK, "removed": palette.DAMAGE, "rewritten": palette.WARNING}
    for kind, first, last, count in spans:
        lane = kinds.index(kind)
        left, right = axis.x(first), axis.x(last) + width
        color = colors.get(kind.split(" ")[0], palette.ACCENT)
        ax.barh(lane, right - left, left=left, height=0.5, color=color, gid=f"change:{kind}")
        ax.annotate(
            str(count),
            ((left + right) / 2, lane),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    if not spans:
        ax.text(0.5, 0.5, "no labels changed", ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks(range(len(kinds)), kinds)
    ax.set_ylim(-0.8, max(len(kinds), 1) - 0.2)
    axis.finish(ax, title.split(":")[0])
    ax.set_title(title, fontsize=10)
    return figure


def draw_difference(data: xr.DataArray, *, title: str, ax: Axes | None = None) -> Figure:
    """A difference of one variable at one label: a map for 2-d data, a line for 1-d data."""
    values = data.squeeze(drop=True)
    figure, ax = _axes(ax, (8.0, 4.5))
    if values.ndim == 1:
        values.plot.line(ax=ax)
    else:
        limit = float(np.nanmax(np.abs(values.values))) if values.size else 0.0
        limit = limit if np.isfinite(limit) and limit > 0 else 1.0
        mesh = values.plot.pcolormesh(
            ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, add_colorbar=True
        )
        mesh.set_gid("difference")
    ax.set_title(title, fontsize=10)
    return figure
