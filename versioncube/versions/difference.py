"""How one variable's values differ between two versions at one append label
(``Cube.diff_values``): how many cells changed, by how much at most, and a map of the
difference (``.plot()``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import icechunk
import numpy as np
import xarray as xr

from versioncube.display import html, palette
from versioncube.display.format import format_label
from versioncube.display.json import JsonValue, label_to_json
from versioncube.display.results import Result
from versioncube.errors import VersionError
from versioncube.store.dataset import open_version
from versioncube.versions.frames import stored_label


@dataclasses.dataclass(frozen=True)
class ValueDifference(Result):
    """One variable at one label in two versions: ``before``, ``after`` and their difference."""

    variable: str
    append_dim: str
    label: Any
    from_snapshot: str
    to_snapshot: str
    changed_cells: int
    total_cells: int
    largest: float | None  # the largest absolute difference (None: no numbers differ)
    before: xr.DataArray = dataclasses.field(repr=False, compare=False)
    after: xr.DataArray = dataclasses.field(repr=False, compare=False)

    @property
    def difference(self) -> xr.DataArray:
        """``after - before`` (NaN where either is missing)."""
        return self.after - self.before

    def headline(self) -> str:
        where = f"{self.variable} at {self.append_dim} {format_label(self.label)}"
        return f"{where}: {self.from_snapshot[:12]} -> {self.to_snapshot[:12]}"

    def describe(self) -> str:
        text = f"{self.headline()}\n{self.changed_cells} of {self.total_cells} cells differ"
        if self.largest is not None:
            text += f", by at most {self.largest:.6g}"
        return text

    def to_json(self) -> JsonValue:
        return {
            "variable": self.variable,
            "append_dim": self.append_dim,
            "label": label_to_json(self.label),
            "from_snapshot": self.from_snapshot,
            "to_snapshot": self.to_snapshot,
            "changed_cells": self.changed_cells,
            "total_cells": self.total_cells,
            "largest": self.largest,
        }

    def _repr_html_(self) -> str:
        changed = f"{self.changed_cells} of {self.total_cells} cells differ"
        if self.largest is not None:
            changed += f", by at most {self.largest:.6g}"
        details = [("from", self.from_snapshot), ("to", self.to_snapshot), ("values", changed)]
        accent = palette.WARNING if self.changed_cells else palette.OK
        return html.card(self.html_kind(), self.headline(), "", html.facts(details), accent=accent)

    def plot(self, ax: Any = None) -> Any:
        """The difference as a map (a line for 1-d data; a matplotlib Figure, needs
        ``versioncube[plot]``)."""
        from versioncube.display.plots import draw_difference

        data = self.difference.squeeze(drop=True)
        if data.ndim > 2:
            raise VersionError(
                f"{self.variable} has {data.ndim} dimensions {data.dims} at one label; a map "
                "shows two: select the others first, e.g. result.difference.isel(level=0)"
            )
        return draw_difference(data, title=f"{self.headline()} (after - before)", ax=ax)


def value_difference(
    repo: icechunk.Repository,
    from_snapshot: str,
    to_snapshot: str,
    *,
    variable: str,
    label: Any,
    append_dim: str,
    where: str,
) -> ValueDifference:
    """Compare ``variable`` at the append label ``label`` in two versions (both must hold it)."""
    rows = []
    for snapshot in (from_snapshot, to_snapshot):
        dataset = open_version(repo, snapshot, where=f"{where} at {snapshot[:12]}", chunks=None)
        if variable not in dataset.variables:
            raise VersionError(
                f"version {snapshot[:12]} of {where} has no variable {variable!r}; it has "
                f"{', '.join(map(str, dataset.data_vars))}"
            )
        rows.append(_row(dataset, variable, append_dim, label, f"version {snapshot[:12]}"))
    before, after = rows
    if before.shape != after.shape:
        raise VersionError(
            f"{variable} at {format_label(label)} has shape {before.shape} in version "
            f"{from_snapshot[:12]} and {after.shape} in {to_snapshot[:12]}: not comparable"
        )
    old, new = before.values, after.values
    same = old == new
    if old.dtype.kind in "fc":
        same |= np.isnan(old) & np.isnan(new)
    changed = int((~same).sum())
    largest = None
    if changed and old.dtype.kind in "iufc":
        distance = np.abs(new.astype("float64") - old.astype("float64"))
        largest = float(np.nanmax(distance)) if np.isfinite(distance).any() else None
    return ValueDifference(
        variable=variable,
        append_dim=append_dim,
        label=after[append_dim].values[()] if append_dim in after.coords else label,
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        changed_cells=changed,
        total_cells=int(old.size),
        largest=largest,
        before=before,
        after=after,
    )


def _row(dataset: xr.Dataset, variable: str, dim: str, label: Any, where: str) -> xr.DataArray:
    """The variable at one label, loaded (VersionError naming the labels when it is not there)."""
    wanted = stored_label(label) if isinstance(label, str) else label
    try:
        return dataset[variable].sel({dim: wanted}).load()
    except (KeyError, TypeError, ValueError):
        labels = dataset[dim].values if dim in dataset.variables else np.array([])
        known = (
            f"{format_label(labels[0])} .. {format_label(labels[-1])}" if labels.size else "none"
        )
        raise VersionError(
            f"{where} has no {dim} label {format_label(wanted)} (its labels: {known})"
        ) from None
