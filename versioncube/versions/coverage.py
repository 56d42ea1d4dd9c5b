"""Which steps of the append axis a version holds, and which are missing (``Cube.coverage``).

A cube of daily files should have a label for every day; one that is fed monthly, one for every
month. Given the expected step, every label counts for the period it falls in (a label at
``1948-01-15T12:00`` counts for the year 1948 with a yearly step), and the periods from the first
label's to the last label's are listed as runs of present and missing ones. The gaps are what
``plot_history`` highlights.

Steps are written as ``append_step`` is (``1D``, ``6h``, ``1W``, ``1M`` for calendar months,
``1Y`` for years), as words (``daily``, ``monthly``, ...), as any pandas frequency (``MS``,
``QS``, ``15min``), or, for numeric labels, as a number. Without one, the step is the most
common spacing of the labels (about a month or a year counting as calendar months or years).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from versioncube.display import html, palette
from versioncube.display.format import format_label, format_step, plural
from versioncube.display.json import JsonValue, label_to_json
from versioncube.display.results import Result
from versioncube.errors import ConfigError

if TYPE_CHECKING:
    from pandas.tseries.offsets import BaseOffset

#: Steps by name.
STEP_WORDS = {
    "hourly": "1h",
    "daily": "1D",
    "weekly": "1W",
    "monthly": "1M",
    "yearly": "1Y",
    "annual": "1Y",
}
_APPEND_STEP = re.compile(r"^\s*(\d*)\s*(Y|M|W|D|h|m|s)\s*$")
_OFFSETS = {"Y": "YS", "M": "MS", "W": "7D", "D": "D", "h": "h", "m": "min", "s": "s"}
_WEEKS = 7


@dataclasses.dataclass(frozen=True)
class LabelRun:
    """Consecutive steps that are all present or all missing: the first and last step (the
    start of its period), how many, and where the run ends on the label axis (the start of the
    step after it, for drawing)."""

    present: bool
    first: Any
    last: Any
    count: int
    end: Any

    @property
    def state(self) -> str:
        return "present" if self.present else "missing"

    def span(self) -> str:
        first, last = format_label(self.first), format_label(self.last)
        return first if self.count == 1 else f"{first} .. {last}"

    def __str__(self) -> str:
        return f"{self.state} {self.span()} ({plural(self.count, 'step')})"

    def to_json(self) -> dict[str, JsonValue]:
        return {
            "present": self.present,
            "first": label_to_json(self.first),
            "last": label_to_json(self.last),
            "count": self.count,
        }


@dataclasses.dataclass(frozen=True)
class Coverage(Result):
    """The present and missing steps of a version's append labels."""

    snapshot_id: str
    append_dim: str
    step: str
    labels: int  # labels in the version
    runs: list[LabelRun]  # in label order, present and missing alternating
    shared: int = 0  # labels in a step another label already holds (finer than the step)

    @property
    def expected(self) -> int:
        """Steps from the first label's to the last label's."""
        return sum(run.count for run in self.runs)

    @property
    def present(self) -> int:
        return sum(run.count for run in self.runs if run.present)

    @property
    def missing(self) -> int:
        return self.expected - self.present

    @property
    def gaps(self) -> list[LabelRun]:
        """The runs of missing steps."""
        return [run for run in self.runs if not run.present]

    def headline(self) -> str:
        """``time 2024-03-01 .. 2024-03-10 by 1D: 8 of 10 steps present, 2 missing in 1 gap``"""
        if not self.runs:
            return f"{self.append_dim}: no labels"
        first, last = format_label(self.runs[0].first), format_label(self.runs[-1].last)
        text = (
            f"{self.append_dim} {first} .. {last} by {self.step}: {self.present} of "
            f"{plural(self.expected, 'step')} present"
        )
        if self.missing:
            text += f", {self.missing} missing in {plural(len(self.gaps), 'gap')}"
        if self.shared:
            text += f"; {self.shared} more labels share a step (the labels are finer)"
        return text

    def describe(self) -> str:
        return "\n".join([self.headline(), *(f"  {run}" for run in self.runs)])

    def to_json(self) -> JsonValue:
        return {
            **self._fields_json(),
            "expected": self.expected,
            "present": self.present,
            "missing": self.missing,
        }

    def to_pandas(self) -> pd.DataFrame:
        """The runs as a table: ``state`` (present or missing), ``first``, ``last``, ``steps``."""
        return pd.DataFrame(
            [(run.state, run.first, run.last, run.count) for run in self.runs],
            columns=["state", "first", "last", "steps"],
        )

    def _repr_html_(self) -> str:
        rows = [
            (
                html.colored(run.state, palette.PRESENT if run.present else palette.GAP),
                format_label(run.first),
                format_label(run.last),
                run.count,
            )
            for run in self.runs
        ]
        table = html.table(("state", "first", "last", "steps"), rows)
        accent = palette.WARNING if self.missing else palette.OK
        parts = [html.facts([("version", self.snapshot_id), ("labels", self.labels)])]
        parts.append(html.section("Runs", table, count=len(self.runs)))
        return html.card(self.html_kind(), self.headline(), "", *parts, accent=accent)

    def plot(self, ax: Any = None) -> Any:
        """The steps along the label axis, present in green and missing in red (a matplotlib
        Figure; needs ``versioncube[plot]``)."""
        from versioncube.display.plots import draw_coverage

        runs = [(run.present, run.first, run.end, run.count) for run in self.runs]
        return draw_coverage(runs, title=self.headline(), xlabel=self.append_dim, ax=ax)


def label_coverage(
    labels: np.ndarray, append_dim: str, snapshot_id: str, step: str | float | None = None
) -> Coverage:
    """The coverage of ``labels`` (a version's append coordinate) by ``step`` (see the module
    docstring; None: the labels' most common spacing)."""
    values = np.unique(np.asarray(labels))
    if values.size == 0:
        return Coverage(snapshot_id, append_dim, str(step or "-"), 0, [])
    if step is None:
        step = typical_step(values)
    if values.dtype.kind == "M":
        offset = time_offset(step)
        starts, periods = _time_periods(values, offset)
        text = step if isinstance(step, str) else str(offset.freqstr)
    elif values.dtype.kind in "iuf":
        size = number_step(step)
        starts, periods = _number_periods(values, size)
        text = format_label(_plain(size))
    else:
        raise ConfigError(
            f"coverage needs datetime or numeric {append_dim} labels; these are "
            f"{values.dtype} (labels of other calendars: convert with "
            "ds.convert_calendar first)"
        )
    present = np.zeros(len(starts) - 1, dtype=bool)
    present[periods] = True
    runs = _runs(present, starts)
    return Coverage(
        snapshot_id, append_dim, text, int(values.size), runs, int(values.size - present.sum())
    )


def typical_step(labels: np.ndarray) -> str | float:
    """The most common spacing of sorted unique labels (``1D``; about a month ``1M``, about a
    year ``1Y``); 1 for a single label."""
    if labels.size < 2:
        return "1D" if labels.dtype.kind == "M" else 1
    spacings, counts = np.unique(np.diff(labels), return_counts=True)
    spacing = spacings[np.argmax(counts)]
    if labels.dtype.kind != "M":
        return float(spacing) if labels.dtype.kind == "f" else int(spacing)
    days = spacing / np.timedelta64(1, "D")
    if 27 <= days <= 32:
        return "1M"
    if 359 <= days <= 367:
        return "1Y"
    return format_step(spacing)


def time_offset(step: str | float) -> BaseOffset:
    """A step for datetime labels as a pandas offset (ConfigError when it is none)."""
    from pandas.tseries.frequencies import to_offset

    text = STEP_WORDS.get(str(step).strip().lower(), str(step))
    match = _APPEND_STEP.match(text)
    if match:
        count, unit = int(match.group(1) or 1), match.group(2)
        text = f"{count * _WEEKS}D" if unit == "W" else f"{count}{_OFFSETS[unit]}"
    try:
        offset = to_offset(text)
    except ValueError:
        offset = None
    if offset is None or isinstance(step, int | float) or offset.n <= 0:
        raise ConfigError(
            f"coverage step {step!r} is not a step for time labels: use 1D, 6h, 1W, 1M "
            "(calendar months), 1Y (years), a word (daily, monthly, ...) or a pandas frequency "
            "such as MS"
        )
    return offset


def number_step(step: str | float) -> float:
    """A step for numeric labels (ConfigError when it is not a positive number)."""
    try:
        size = float(step)
    except ValueError:
        size = float("nan")
    if not size > 0:
        raise ConfigError(f"coverage step {step!r} is not a positive number (numeric labels)")
    return size


def _time_periods(labels: np.ndarray, offset: BaseOffset) -> tuple[Sequence[Any], np.ndarray]:
    """The starts of the periods from the first label's to the last's, one past the end, and
    the period of each label."""
    first = pd.Timestamp(labels[0])
    try:
        start = first.floor(offset.freqstr)
    except ValueError:  # a calendar frequency (months, years): the period it starts
        start = offset.rollback(first.normalize())
    edges = pd.date_range(start, pd.Timestamp(labels[-1]), freq=offset)
    ends = pd.DatetimeIndex([*edges, edges[-1] + offset])
    starts = ends.to_numpy(dtype="datetime64[ns]")
    periods = np.searchsorted(starts, labels.astype("datetime64[ns]"), side="right") - 1
    return list(starts), periods


def _number_periods(labels: np.ndarray, size: float) -> tuple[Sequence[Any], np.ndarray]:
    first = labels[0]
    periods = np.floor((labels - first) / size + 1e-9).astype(int)
    starts = [first + index * size for index in range(int(periods[-1]) + 2)]
    return [_plain(start) for start in starts], periods


def _plain(value: Any) -> Any:
    """Whole numbers as ints (``3``, not ``3.0``)."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _runs(present: np.ndarray, starts: Sequence[Any]) -> list[LabelRun]:
    runs: list[LabelRun] = []
    begin = 0
    for index in range(1, len(present) + 1):
        if index == len(present) or present[index] != present[begin]:
            runs.append(
                LabelRun(
                    present=bool(present[begin]),
                    first=starts[begin],
                    last=starts[index - 1],
                    count=index - begin,
                    end=starts[index],
                )
            )
            begin = index
    return runs
