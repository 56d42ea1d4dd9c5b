"""The groups of a version, as ``verify``, ``show`` and ``diff`` see them.

A flat cube is one group, the root. A pyramid's levels and a tree's nodes are groups of the
same version (see :mod:`versioncube.store.groups`); the checks here are those that span them:
every group along the append dimension has the same length and the same labels, and a
pyramid has each of its levels, each half the size of the one before.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import icechunk
import numpy as np
import xarray as xr

from versioncube.display.format import first_line, format_label
from versioncube.store.dataset import open_store
from versioncube.store.groups import LEVELS_ATTR, group_paths, root_attrs, tree_path
from versioncube.store.translate import translated


@dataclasses.dataclass(frozen=True)
class VersionGroups:
    """The data groups of one version, each opened lazily (without inherited coordinates)."""

    datasets: Mapping[str, xr.Dataset]  # group path ("" the root) -> dataset
    levels: Mapping[str, Any] | None  # the pyramid's description, or None

    @property
    def grouped(self) -> bool:
        """Whether the version has groups besides its root (a pyramid or a tree)."""
        return len(self.datasets) > 1 or self.levels is not None

    def label(self, path: str) -> str:
        """``level 2``, ``group /atmos``, or the root of a flat cube: ``the cube``."""
        if self.levels is not None and path:
            return f"level {path}"
        return f"group {tree_path(path)}" if self.grouped else "the cube"

    def along(self, append_dim: str) -> list[str]:
        """The groups whose variables use the append dimension."""
        return [path for path, dataset in self.datasets.items() if append_dim in dataset.dims]

    def reference(self, append_dim: str) -> str:
        """The group whose rows stand for the cube's: the first along the append dimension with
        a label coordinate (else the first along it, else the root)."""
        along = self.along(append_dim)
        labelled = [path for path in along if append_dim in self.datasets[path].variables]
        return (labelled or along or [""])[0]


def read_groups(
    repo: icechunk.Repository, snapshot_id: str, *, where: str = "the cube", **options: Any
) -> VersionGroups:
    """The data groups of the version at ``snapshot_id`` (``options`` for open_dataset)."""
    with translated(where):
        store = repo.readonly_session(snapshot_id=snapshot_id).store
        paths = group_paths(store) or [""]
        spec = root_attrs(store).get(LEVELS_ATTR)
    datasets = {
        path: open_store(
            store,
            path or None,
            where=f"group {tree_path(path)} of {where}" if path else where,
            **options,
        )
        for path in paths
    }
    return VersionGroups(datasets, spec if isinstance(spec, Mapping) else None)


def group_problems(groups: VersionGroups, append_dim: str) -> list[str]:
    """What is wrong across the groups of a version: lengths or labels along the append
    dimension that differ, missing levels, levels not half the size of the one before."""
    problems: list[str] = []
    reference = groups.reference(append_dim)
    base = groups.datasets[reference]
    size = base.sizes.get(append_dim, 0)
    labels = base.variables.get(append_dim)
    for path in groups.along(append_dim):
        dataset = groups.datasets[path]
        here, there = groups.label(path), groups.label(reference)
        if dataset.sizes[append_dim] != size:
            problems.append(
                f"{here} has {dataset.sizes[append_dim]} {append_dim} steps, {there} has {size}: "
                "the groups of a cube must have the same length"
            )
            continue
        own = dataset.variables.get(append_dim)
        if own is not None and labels is not None and path != reference:
            differing = np.nonzero(own.values != labels.values)[0]
            if differing.size:
                row = int(differing[0])
                problems.append(
                    f"{here} has the {append_dim} label {format_label(own.values[row])} at row "
                    f"{row}, {there} has {format_label(labels.values[row])}"
                )
    if groups.levels is not None:
        problems += _level_problems(groups)
    return problems


def _level_problems(groups: VersionGroups) -> list[str]:
    spec = groups.levels or {}
    try:
        count = int(spec["num_levels"])
        x, y = spec.get("xy_dim_names") or ("x", "y")
    except (KeyError, TypeError, ValueError) as error:
        return [f"the pyramid's description ({LEVELS_ATTR}) is unreadable: {first_line(error)}"]
    missing = [str(level) for level in range(count) if str(level) not in groups.datasets]
    if missing:
        return [f"the pyramid has {count} levels, but level(s) {', '.join(missing)} are missing"]
    problems = []
    level0 = groups.datasets["0"]
    for level in range(1, count):
        dataset = groups.datasets[str(level)]
        for dim in (x, y):
            if dim not in level0.sizes or dim not in dataset.sizes:
                continue
            expected = math.ceil(level0.sizes[dim] / 2**level)
            if dataset.sizes[dim] != expected:
                problems.append(
                    f"level {level} has {dataset.sizes[dim]} {dim} pixels, level 0 has "
                    f"{level0.sizes[dim]}: a level {level} has {expected} (1/{2**level})"
                )
    return problems
