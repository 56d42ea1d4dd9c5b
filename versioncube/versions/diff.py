"""What changed between two versions of a cube: variables, append labels, values and attributes.

Everything is found by comparing the two versions' data, so it is right whatever operation (or
other tool) made the second from the first: appends, rollbacks, updates, inserts, deletes,
variables added or dropped.

* Labels are matched by value: labels only the second version has are *added* (appended or
  inserted), labels only the first has are *removed*, each listed as runs of consecutive rows.
* Values are compared at the labels both versions hold, variable by variable, and only where
  they can differ: where a label sits at the same row in both versions, Icechunk's chunk-level
  diff against their common ancestor names the chunks either side rewrote, and rows in chunks
  neither side touched are skipped unread (an append-only history compares at most the last
  partly filled chunk); rows that moved (an insert or delete before them) are compared. Each
  run of rewritten labels is reported per variable with the cells that changed and the largest
  absolute change.

A cube of groups (a pyramid's levels, a tree's nodes) is compared group by group: groups added
or removed, and each group's own differences (groups that changed alike are listed together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import icechunk
import numpy as np
import pandas as pd
import xarray as xr

from versioncube.display import html, palette
from versioncube.display.format import format_label, plural
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.store.containers import referenced_files
from versioncube.store.groups import tree_path
from versioncube.versions.groups import VersionGroups, read_groups


@dataclasses.dataclass(frozen=True)
class LabelRange:
    """A run of append labels: the first, the last, and how many."""

    first: Any
    last: Any
    count: int

    def __str__(self) -> str:
        first, last = format_label(self.first), format_label(self.last)
        span = first if self.count == 1 else f"{first} .. {last}"
        return f"{span} ({plural(self.count, 'step')})"

    def to_json(self) -> dict[str, Any]:
        return {
            "first": label_to_json(self.first),
            "last": label_to_json(self.last),
            "count": self.count,
        }


@dataclasses.dataclass(frozen=True)
class ValueChange:
    """How one variable's values changed over a run of labels (None: a variable without the
    append dimension, compared whole)."""

    labels: LabelRange | None
    cells: int  # cells whose values differ
    largest: float | None  # the largest absolute difference (None: not numbers, or NaN-only)

    def __str__(self) -> str:
        where = f"{self.labels}: " if self.labels is not None else ""
        size = f", by at most {self.largest:.6g}" if self.largest is not None else ""
        return f"{where}{plural(self.cells, 'cell')} changed{size}"

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels.to_json() if self.labels is not None else None,
            "cells": self.cells,
            "largest": self.largest,
        }


@dataclasses.dataclass(frozen=True)
class CubeDiff(Result):
    """The differences from one version (``from_snapshot``) to another (``to_snapshot``)."""

    from_snapshot: str
    to_snapshot: str
    append_dim: str
    variables_added: list[str]
    variables_removed: list[str]
    variables_changed: dict[str, list[str]]  # name -> what changed (dims, dtype, attrs)
    labels_added: list[LabelRange]  # runs of labels only the second version has
    labels_removed: list[LabelRange]  # runs of labels only the first version has
    labels_rewritten: list[LabelRange]  # runs of labels of both whose values differ
    attrs_changed: dict[str, tuple[Any, Any]]  # dataset attribute -> (before, after)
    groups_added: list[str] = dataclasses.field(default_factory=list)  # DataTree paths
    groups_removed: list[str] = dataclasses.field(default_factory=list)
    #: each changed group's own differences, by label ("level 1", "group /atmos")
    group_diffs: dict[str, CubeDiff] = dataclasses.field(default_factory=dict)
    references_added: list[str] = dataclasses.field(default_factory=list)  # referenced files
    references_removed: list[str] = dataclasses.field(default_factory=list)  # (URLs)
    #: variable -> how its values changed, run by run of rewritten labels
    values_changed: dict[str, list[ValueChange]] = dataclasses.field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (
            self.variables_added or self.variables_removed or self.variables_changed
            or self.labels_added or self.labels_removed or self.labels_rewritten
            or self.attrs_changed or self.groups_added or self.groups_removed
            or self.group_diffs or self.references_added or self.references_removed
        )  # fmt: skip

    def describe(self) -> str:
        lines = [f"{self.from_snapshot[:12]} -> {self.to_snapshot[:12]}"]
        if self.is_empty:
            return lines[0] + "\nno differences"
        return "\n".join(lines + self._changes())

    def _changes(self) -> list[str]:
        """One line per difference (per group, for a cube of groups)."""
        lines = [f"+ group {path}" for path in self.groups_added]
        lines += [f"- group {path}" for path in self.groups_removed]
        alike: dict[tuple[str, ...], list[str]] = {}
        for label, group_diff in self.group_diffs.items():
            alike.setdefault(tuple(group_diff._changes()), []).append(label)
        for group_changes, labels in alike.items():
            lines.append(f"{', '.join(labels)}:")
            lines += [f"  {change}" for change in group_changes]
        dim = self.append_dim
        lines += [f"+ variable {name}" for name in self.variables_added]
        lines += [f"- variable {name}" for name in self.variables_removed]
        for name, changes in self.variables_changed.items():
            lines += [f"~ variable {name}: {change}" for change in changes]
        lines += [f"+ {dim} {span}" for span in self.labels_added]
        lines += [f"- {dim} {span}" for span in self.labels_removed]
        lines += [f"~ {dim} {span} rewritten" for span in self.labels_rewritten]
        for name, value_changes in self.values_changed.items():
            lines += [f"  ~ {name} {change}" for change in value_changes]
        for key, (before, after) in self.attrs_changed.items():
            lines.append(f"~ attribute {key}: {before!r} -> {after!r}")
        if self.references_added:
            lines.append(f"+ references {_files(self.references_added)}")
        if self.references_removed:
            lines.append(
                f"- references {_files(self.references_removed)} (rolled back, or materialized)"
            )
        return lines

    def html_title(self) -> str:
        return "Differences"

    def _repr_html_(self) -> str:
        title = f"{self.from_snapshot[:12]} -> {self.to_snapshot[:12]}"
        versions = html.facts([("from", self.from_snapshot), ("to", self.to_snapshot)])
        if self.is_empty:
            return html.card(self.html_kind(), title, html.muted("no differences"), versions)
        changes = self._changes()
        marked = html.lines(_marked(line) for line in changes)
        section = html.section("Changes", marked, count=len(changes))
        return html.card(self.html_kind(), title, "", versions, section)

    def plot(self, ax: Any = None) -> Any:
        """The changed append labels along the label axis: added, removed and rewritten ranges
        (a matplotlib Figure; needs ``versioncube[plot]``)."""
        from versioncube.display.plots import draw_label_changes

        spans = self.label_spans()
        for label, group_diff in self.group_diffs.items():
            spans += [(f"{kind} in {label}", span) for kind, span in group_diff.label_spans()]
        title = f"{self.append_dim}: {self.from_snapshot[:12]} -> {self.to_snapshot[:12]}"
        return draw_label_changes(
            [(kind, span.first, span.last, span.count) for kind, span in spans if span],
            title=title,
            ax=ax,
        )

    def label_spans(self) -> list[tuple[str, LabelRange | None]]:
        """(kind, range) of every label change: added, removed, rewritten."""
        spans: list[tuple[str, LabelRange | None]] = [("added", span) for span in self.labels_added]
        spans += [("removed", span) for span in self.labels_removed]
        return spans + [("rewritten", span) for span in self.labels_rewritten]


def diff_versions(
    repo: icechunk.Repository,
    from_snapshot: str,
    to_snapshot: str,
    append_dim: str,
    where: str = "the cube",
) -> CubeDiff:
    """Compare two snapshots of the cube (they need not be on the same branch)."""
    options: dict[str, Any] = {"chunks": None, "create_default_indexes": False}
    before = read_groups(repo, from_snapshot, where=f"{where} at {from_snapshot[:12]}", **options)
    after = read_groups(repo, to_snapshot, where=f"{where} at {to_snapshot[:12]}", **options)
    files_before = set(referenced_files(repo, from_snapshot))
    files_after = set(referenced_files(repo, to_snapshot))
    added, removed = sorted(files_after - files_before), sorted(files_before - files_after)
    if not (before.grouped or after.grouped):
        flat = _diff_group(repo, from_snapshot, to_snapshot, before, after, "", append_dim)
        return dataclasses.replace(flat, references_added=added, references_removed=removed)
    group_diffs = {
        after.label(path): changed
        for path in after.datasets
        if path in before.datasets
        and not (
            changed := _diff_group(
                repo, from_snapshot, to_snapshot, before, after, path, append_dim
            )
        ).is_empty
    }
    return CubeDiff(
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        append_dim=append_dim,
        variables_added=[],
        variables_removed=[],
        variables_changed={},
        labels_added=[],
        labels_removed=[],
        labels_rewritten=[],
        attrs_changed={},
        groups_added=[tree_path(path) for path in after.datasets if path not in before.datasets],
        groups_removed=[tree_path(path) for path in before.datasets if path not in after.datasets],
        group_diffs=group_diffs,
        references_added=added,
        references_removed=removed,
    )


def _diff_group(
    repo: icechunk.Repository,
    from_snapshot: str,
    to_snapshot: str,
    before_groups: VersionGroups,
    after_groups: VersionGroups,
    group: str,
    append_dim: str,
) -> CubeDiff:
    """The differences of one group (the root of a flat cube) between two versions."""
    before, after = before_groups.datasets[group], after_groups.datasets[group]
    names_before, names_after = set(map(str, before.variables)), set(map(str, after.variables))
    changed = {
        name: changes
        for name in sorted(names_before & names_after)
        if (changes := _variable_changes(before.variables[name], after.variables[name]))
    }
    labels_before = _labels(before, append_dim)
    labels_after = _labels(after, append_dim)
    matched = _matched_rows(labels_before, labels_after)
    added = np.setdiff1d(np.arange(len(labels_after)), matched[1])
    removed = np.setdiff1d(np.arange(len(labels_before)), matched[0])
    values = _changed_values(
        repo, from_snapshot, to_snapshot, before, after, append_dim, matched, group
    )
    rewritten = sorted({int(row) for rows in values.values() for row, *_ in rows})
    return CubeDiff(
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        append_dim=append_dim,
        variables_added=sorted(names_after - names_before),
        variables_removed=sorted(names_before - names_after),
        variables_changed=changed,
        labels_added=_spans(labels_after, added),
        labels_removed=_spans(labels_before, removed),
        labels_rewritten=_spans(labels_after, np.asarray(rewritten, dtype=int)),
        attrs_changed=_mapping_changes(before.attrs, after.attrs),
        values_changed={
            name: _value_changes(labels_after, rows) for name, rows in values.items() if rows
        },
    )


def _marked(line: str) -> html.Markup:
    """A line of changes in the colour of its mark: ``+`` added, ``-`` removed, ``~`` changed."""
    colors = {"+": palette.OK, "-": palette.DAMAGE, "~": palette.WARNING}
    color = colors.get(line.lstrip()[:1])
    return html.colored(line, color) if color else html.Markup(html.escape(line))


def _files(urls: list[str]) -> str:
    """``a.nc, b.nc (2 files)``, or the first and last of many."""
    names = [url.rsplit("/", 1)[-1] for url in urls]
    shown = ", ".join(names) if len(names) <= 3 else f"{names[0]} .. {names[-1]}"
    return f"{shown} ({plural(len(urls), 'file')})"


def _labels(dataset: xr.Dataset, dim: str) -> np.ndarray:
    if dim in dataset.variables:
        return dataset.variables[dim].values
    return np.arange(dataset.sizes.get(dim, 0))


def _matched_rows(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the labels both versions hold: (rows in ``before``, rows in ``after``),
    in the order of ``after``. Labels are matched by value; labels that are not unique (a
    damaged cube) or of different kinds are matched by position up to the first difference."""
    comparable = before.dtype == after.dtype or before.dtype.kind == after.dtype.kind
    if comparable and pd.Index(before).is_unique and pd.Index(after).is_unique:
        in_before = pd.Index(before).get_indexer(after)
        rows_after = np.nonzero(in_before >= 0)[0]
        return in_before[rows_after], rows_after
    length = min(len(before), len(after))
    common = 0
    if comparable:
        unequal = np.nonzero(before[:length] != after[:length])[0]
        common = int(unequal[0]) if unequal.size else length
    return np.arange(common), np.arange(common)


def _runs_of(rows: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive rows: ``[(start, stop), ...]``."""
    runs: list[tuple[int, int]] = []
    for row in rows.tolist():
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs


def _spans(labels: np.ndarray, rows: np.ndarray) -> list[LabelRange]:
    return [
        LabelRange(labels[start], labels[stop - 1], stop - start) for start, stop in _runs_of(rows)
    ]


def _value_changes(
    labels: np.ndarray, rows: list[tuple[int, int, float | None]]
) -> list[ValueChange]:
    """Per-row changes ``(row, cells, largest)`` gathered into runs of consecutive rows (a
    row of -1: a variable without the append dimension)."""
    if rows[0][0] < 0:
        return [ValueChange(None, rows[0][1], rows[0][2])]
    by_row = {row: (cells, largest) for row, cells, largest in rows}
    changes = []
    for start, stop in _runs_of(np.asarray(sorted(by_row))):
        parts = [by_row[row] for row in range(start, stop)]
        largest = [value for _, value in parts if value is not None]
        changes.append(
            ValueChange(
                LabelRange(labels[start], labels[stop - 1], stop - start),
                sum(cells for cells, _ in parts),
                max(largest) if largest else None,
            )
        )
    return changes


def _variable_changes(before: xr.Variable, after: xr.Variable) -> list[str]:
    changes = []
    if before.dims != after.dims:
        changes.append(f"dims {before.dims} -> {after.dims}")
    if before.dtype != after.dtype:
        changes.append(f"dtype {before.dtype} -> {after.dtype}")
    for key, (old, new) in _mapping_changes(before.attrs, after.attrs).items():
        changes.append(f"attribute {key}: {old!r} -> {new!r}")
    return changes


def _mapping_changes(
    before: Mapping[Any, Any], after: Mapping[Any, Any]
) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for key in sorted(set(before) | set(after), key=str):
        old, new = before.get(key), after.get(key)
        if not _same(old, new):
            changes[str(key)] = (old, new)
    return changes


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(a, b)) if a is not None and b is not None else a is b
    except (TypeError, ValueError):
        return bool(a == b)


#: Rows of one variable compared at once.
BLOCK_ROWS = 64


def _changed_values(
    repo: icechunk.Repository,
    from_snapshot: str,
    to_snapshot: str,
    before: xr.Dataset,
    after: xr.Dataset,
    dim: str,
    matched: tuple[np.ndarray, np.ndarray],
    group: str = "",
) -> dict[str, list[tuple[int, int, float | None]]]:
    """Per variable of both versions, the rows (of ``after``) of matched labels whose values
    differ, with the cells that differ and the largest absolute difference; ``(-1, ...)`` for a
    variable without the append dimension that differs.

    Candidates: every matched row that moved; of the rows in place, those in chunks that
    Icechunk's diff against the common ancestor says either side rewrote (all of them for an
    array either side created anew, e.g. dropped and added again).
    """
    if from_snapshot == to_snapshot:
        return {}
    rows_before, rows_after = matched
    touched = _touched_chunks(repo, from_snapshot, to_snapshot, group)
    result: dict[str, list[tuple[int, int, float | None]]] = {}
    for name in sorted(set(map(str, before.variables)) & set(map(str, after.variables))):
        old, new = before.variables[name], after.variables[name]
        if name == dim or old.dims != new.dims or name in after.indexes:
            continue
        if dim not in new.dims:
            if old.shape == new.shape and (touched is None or name in touched):
                cells, largest = _difference(old.values, new.values)
                if cells:
                    result[name] = [(-1, cells, largest)]
            continue
        if any(old.sizes[d] != new.sizes[d] for d in new.dims if d != dim):
            continue
        pairs = _candidates(name, new, dim, rows_before, rows_after, touched)
        found = []
        for start in range(0, len(pairs[0]), BLOCK_ROWS):
            block_before = pairs[0][start : start + BLOCK_ROWS]
            block_after = pairs[1][start : start + BLOCK_ROWS]
            axis = new.dims.index(dim)
            values_old = np.moveaxis(old[{dim: block_before}].values, axis, 0)
            values_new = np.moveaxis(new[{dim: block_after}].values, axis, 0)
            for row, a, b in zip(block_after.tolist(), values_old, values_new, strict=True):
                cells, largest = _difference(a, b)
                if cells:
                    found.append((row, cells, largest))
        result[name] = found
    return result


def _touched_chunks(
    repo: icechunk.Repository, from_snapshot: str, to_snapshot: str, group: str
) -> dict[str, set[tuple[int, ...]] | None] | None:
    """The chunks of each array (by name in ``group``) either version rewrote since their
    common ancestor (None for an array created anew: all of it); None when unknown."""
    try:
        base = _common_ancestor(repo, from_snapshot, to_snapshot)
    except AssertionError:
        return None
    prefix = f"{group}/" if group else ""
    touched: dict[str, set[tuple[int, ...]] | None] = {}

    def name_of(path: str) -> str | None:
        name = path.strip("/")
        if not name.startswith(prefix) or "/" in name[len(prefix) :]:
            return None  # another group's array
        return name[len(prefix) :]

    for side in (from_snapshot, to_snapshot):
        if side == base:
            continue
        changes = repo.diff(from_snapshot_id=base, to_snapshot_id=side)
        for path in changes.new_arrays:
            if (name := name_of(path)) is not None:
                touched[name] = None
        for path, indices in changes.updated_chunks.items():
            name = name_of(path)
            if name is None:
                continue
            known = touched.setdefault(name, set())
            if known is not None:
                known.update(tuple(map(int, index)) for index in indices)
    return touched


def _candidates(
    name: str,
    variable: xr.Variable,
    dim: str,
    rows_before: np.ndarray,
    rows_after: np.ndarray,
    touched: dict[str, set[tuple[int, ...]] | None] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The matched rows of a variable whose values may differ (see :func:`_changed_values`)."""
    moved = rows_before != rows_after
    if touched is None or (name in touched and touched[name] is None):
        return rows_before, rows_after
    chunks = touched.get(name) or set()
    axis = variable.dims.index(dim)
    # Icechunk's chunks are the stored objects: shards, when the array has them
    stored = variable.encoding.get("shards") or variable.encoding.get("chunks", variable.shape)
    length = max(int(stored[axis]), 1)
    rewritten = {index[axis] for index in chunks}
    in_rewritten = np.isin(rows_after // length, list(rewritten)) | np.isin(
        rows_before // length, list(rewritten)
    )
    chosen = moved | in_rewritten
    return rows_before[chosen], rows_after[chosen]


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[int, float | None]:
    """Cells that differ (NaN equals NaN) and the largest absolute difference."""
    if a.shape != b.shape:
        return int(max(a.size, b.size)), None
    same = a == b
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        same |= np.isnan(a) & np.isnan(b)
    elif a.dtype.kind in "mM" and b.dtype.kind in "mM":
        same |= np.isnat(a) & np.isnat(b)
    changed = int((~np.asarray(same)).sum())
    largest = None
    if changed and a.dtype.kind in "iufc" and b.dtype.kind in "iufc":
        distance = np.abs(b.astype("float64") - a.astype("float64"))
        finite = distance[np.isfinite(distance)]
        largest = float(finite.max()) if finite.size else None
    return changed, largest


def _common_ancestor(repo: icechunk.Repository, a: str, b: str) -> str:
    ancestors_of_a = {snapshot.id for snapshot in repo.ancestry(snapshot_id=a)}
    for snapshot in repo.ancestry(snapshot_id=b):
        if snapshot.id in ancestors_of_a:
            return snapshot.id
    raise AssertionError("every snapshot descends from the repository's first snapshot")
