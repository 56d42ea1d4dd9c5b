"""What changed between two versions of a cube: variables, append labels and attributes.

Label changes come from the two versions' append coordinates (what is appended or gone after
their common prefix) and from Icechunk's chunk-level diff against their common ancestor
(which rows inside the common prefix were rewritten, e.g. re-appended after a rollback).

A cube of groups (a pyramid's levels, a tree's nodes) is compared group by group: groups added
or removed, and each group's own differences (groups that changed alike are listed together).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import icechunk
import numpy as np
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
class CubeDiff(Result):
    """The differences from one version (``from_snapshot``) to another (``to_snapshot``)."""

    from_snapshot: str
    to_snapshot: str
    append_dim: str
    variables_added: list[str]
    variables_removed: list[str]
    variables_changed: dict[str, list[str]]  # name -> what changed (dims, dtype, attrs)
    labels_added: LabelRange | None
    labels_removed: LabelRange | None
    labels_rewritten: list[LabelRange]
    attrs_changed: dict[str, tuple[Any, Any]]  # dataset attribute -> (before, after)
    groups_added: list[str] = dataclasses.field(default_factory=list)  # DataTree paths
    groups_removed: list[str] = dataclasses.field(default_factory=list)
    #: each changed group's own differences, by label ("level 1", "group /atmos")
    group_diffs: dict[str, CubeDiff] = dataclasses.field(default_factory=dict)
    references_added: list[str] = dataclasses.field(default_factory=list)  # referenced files
    references_removed: list[str] = dataclasses.field(default_factory=list)  # (URLs)

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
        if self.labels_added:
            lines.append(f"+ {dim} {self.labels_added}")
        if self.labels_removed:
            lines.append(f"- {dim} {self.labels_removed}")
        lines += [f"~ {dim} {span} rewritten" for span in self.labels_rewritten]
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
        spans = [("added", self.labels_added), ("removed", self.labels_removed)]
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
        labels_added=None,
        labels_removed=None,
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
    common = _common_prefix(labels_before, labels_after)
    rewritten = _rewritten_rows(
        repo, from_snapshot, to_snapshot, before, after, append_dim, common, group
    )
    return CubeDiff(
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        append_dim=append_dim,
        variables_added=sorted(names_after - names_before),
        variables_removed=sorted(names_before - names_after),
        variables_changed=changed,
        labels_added=_span(labels_after, common, len(labels_after)),
        labels_removed=_span(labels_before, common, len(labels_before)),
        labels_rewritten=[
            span for start, stop in rewritten if (span := _span(labels_after, start, stop))
        ],
        attrs_changed=_mapping_changes(before.attrs, after.attrs),
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


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    length = min(len(a), len(b))
    if a.dtype != b.dtype:
        return 0
    unequal = np.nonzero(a[:length] != b[:length])[0]
    return int(unequal[0]) if unequal.size else length


def _span(labels: np.ndarray, start: int, stop: int) -> LabelRange | None:
    if stop <= start:
        return None
    return LabelRange(labels[start], labels[stop - 1], stop - start)


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


def _rewritten_rows(
    repo: icechunk.Repository,
    from_snapshot: str,
    to_snapshot: str,
    before: xr.Dataset,
    after: xr.Dataset,
    dim: str,
    common: int,
    group: str = "",
) -> list[tuple[int, int]]:
    """Row ranges inside the common label prefix whose values differ between the versions.

    Icechunk's chunk-level diff against the common ancestor names the candidate rows cheaply;
    their values are then compared, because a chunk holding several rows is rewritten whenever
    one of them changes (an append into a partly filled chunk, for one).
    """
    if common == 0 or from_snapshot == to_snapshot:
        return []
    base = _common_ancestor(repo, from_snapshot, to_snapshot)
    candidates: set[int] = set()
    for side, dataset in ((from_snapshot, before), (to_snapshot, after)):
        if base == side:
            continue
        changes = repo.diff(from_snapshot_id=base, to_snapshot_id=side).updated_chunks
        prefix = f"{group}/" if group else ""
        for path, chunk_indices in changes.items():
            name = path.strip("/")
            if not name.startswith(prefix) or "/" in name[len(prefix) :]:
                continue  # another group's array
            name = name[len(prefix) :]
            if name == dim or name not in dataset.variables:
                continue
            variable = dataset.variables[name]
            if dim not in variable.dims:
                continue
            axis = variable.dims.index(dim)
            size = variable.encoding.get("chunks", variable.shape)[axis]
            for index in chunk_indices:
                start = index[axis] * size
                candidates.update(range(start, min(start + size, common)))
    rows = sorted(candidates)
    differing = [
        row
        for row in rows
        if any(
            not _same_values(before.variables[name][{dim: row}], after.variables[name][{dim: row}])
            for name in before.variables
            if name != dim and name in after.variables and dim in before.variables[name].dims
        )
    ]
    return _runs(differing)


def _same_values(a: xr.Variable, b: xr.Variable) -> bool:
    if a.shape != b.shape:
        return False
    values_a, values_b = a.values, b.values
    return bool(np.array_equal(values_a, values_b, equal_nan=values_a.dtype.kind in "fcmM"))


def _common_ancestor(repo: icechunk.Repository, a: str, b: str) -> str:
    ancestors_of_a = {snapshot.id for snapshot in repo.ancestry(snapshot_id=a)}
    for snapshot in repo.ancestry(snapshot_id=b):
        if snapshot.id in ancestors_of_a:
            return snapshot.id
    raise AssertionError("every snapshot descends from the repository's first snapshot")


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs
