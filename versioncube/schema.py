"""What a cube looks like, and whether a slice fits it.

:class:`CubeOutline` is read from the cube's head (lazily: metadata, the small grid coordinates
and the last append label only, so reading it costs the same for a cube of 10 or 10,000
appends) or taken from a first slice. :func:`plan_append` checks a slice against an outline
before anything is written and raises :class:`SliceValidationError` naming the slice and what
differs; it returns what the append will write.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from versioncube.encoding import inexact_labels
from versioncube.errors import SliceValidationError


@dataclasses.dataclass(frozen=True)
class VariableOutline:
    """A variable's name, dimensions, sizes and (decoded) dtype."""

    dims: tuple[str, ...]
    sizes: Mapping[str, int]
    dtype: np.dtype
    time_units: str | None  # the stored CF units of a datetime variable


@dataclasses.dataclass(frozen=True)
class CubeOutline:
    """The shape of a cube: what every appended slice must match."""

    append_dim: str
    size: int  # length along the append dimension
    variables: Mapping[str, VariableOutline]
    grid: Mapping[str, xr.Variable]  # coordinates without the append dimension
    last_label: Any  # the last append label (numpy scalar), or None without a coordinate

    @classmethod
    def of_dataset(cls, dataset: xr.Dataset, append_dim: str) -> CubeOutline:
        """Outline of a (lazily opened) cube head or of a first slice."""
        variables = {
            str(name): VariableOutline(
                dims=tuple(map(str, variable.dims)),
                sizes={str(dim): size for dim, size in variable.sizes.items()},
                dtype=variable.dtype,
                time_units=variable.encoding.get("units") if variable.dtype.kind == "M" else None,
            )
            for name, variable in dataset.variables.items()
        }
        grid = {
            str(name): dataset.variables[name].load()
            for name in dataset.coords
            if append_dim not in dataset.variables[name].dims
        }
        labels = dataset.variables.get(append_dim)
        size = dataset.sizes.get(append_dim, 0)
        last_label = labels[-1].values[()] if labels is not None and size else None
        return cls(append_dim, size, variables, grid, last_label)

    def extended(self, plan: AppendPlan) -> CubeOutline:
        """The outline after ``plan`` was appended (used by dry runs)."""
        last = plan.labels[1] if plan.labels is not None else self.last_label
        return dataclasses.replace(self, size=plan.index_range[1], last_label=last)


@dataclasses.dataclass(frozen=True)
class AppendPlan:
    """What appending one slice will do: which rows, which labels, which variables to write."""

    slice_name: str
    index_range: tuple[int, int]
    labels: tuple[Any, Any] | None  # first and last append label
    dataset: xr.Dataset  # what to write: for an append, only variables along the append dim
    creates_cube: bool


def plan_first_slice(dataset: xr.Dataset, append_dim: str, slice_name: str) -> AppendPlan:
    """Check that a slice can start a cube along ``append_dim``."""
    labels = _check_append_dim(dataset, append_dim, slice_name)
    count = dataset.sizes[append_dim]
    return AppendPlan(slice_name, (0, count), labels, dataset, creates_cube=True)


def plan_append(cube: CubeOutline, dataset: xr.Dataset, slice_name: str) -> AppendPlan:
    """Check a slice against the cube; everything that differs is reported by name."""
    dim = cube.append_dim
    labels = _check_append_dim(dataset, dim, slice_name)
    fail = _failer(slice_name)

    names = set(map(str, dataset.variables))
    missing = sorted(set(cube.variables) - names)
    extra = sorted(names - set(cube.variables))
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"lacks variable(s) {_names(missing)} that the cube has")
        if extra:
            problems.append(f"has variable(s) {_names(extra)} that the cube does not have")
        fail(" and ".join(problems))

    for name in sorted(cube.variables):
        _check_variable(name, cube.variables[name], dataset.variables[name], dim, fail)
    for name, grid_values in cube.grid.items():
        _check_grid(name, grid_values, dataset.variables[name], fail)
    if labels is not None and cube.last_label is not None:
        first = labels[0]
        if not _greater(first, cube.last_label):
            fail(
                f"{dim} label {format_label(first)} is not after the cube's last label "
                f"{format_label(cube.last_label)}: appending it would duplicate or disorder "
                f"{dim} (to rewrite existing labels, roll back first)"
            )

    count = dataset.sizes[dim]
    to_write = dataset.drop_vars(
        [name for name in dataset.variables if dim not in dataset[name].dims]
    )
    return AppendPlan(
        slice_name, (cube.size, cube.size + count), labels, to_write, creates_cube=False
    )


def _check_append_dim(dataset: xr.Dataset, dim: str, slice_name: str) -> tuple[Any, Any] | None:
    fail = _failer(slice_name)
    if dim not in dataset.dims:
        found = ", ".join(map(str, dataset.dims)) or "none"
        fail(f"has no dimension {dim!r} to append along (its dimensions: {found})")
    if dataset.sizes[dim] == 0:
        fail(f"is empty: dimension {dim!r} has size 0")
    if dim not in dataset.variables:
        return None
    values = dataset.variables[dim].values
    if values.dtype.kind in "mM" and np.isnat(values).any():
        fail(f"has missing (NaT) {dim} labels")
    if values.dtype.kind in "fc" and np.isnan(values).any():
        fail(f"has missing (NaN) {dim} labels")
    if values.size > 1 and not all(_greater(b, a) for a, b in itertools.pairwise(values)):
        fail(f"{dim} labels are not strictly increasing: {_preview(values)}")
    return values[0], values[-1]


def _check_variable(
    name: str, expected: VariableOutline, variable: xr.Variable, dim: str, fail
) -> None:
    dims = tuple(map(str, variable.dims))
    if dims != expected.dims:
        fail(f"variable {name!r} has dimensions {_dims(dims)}, the cube has {_dims(expected.dims)}")
    if not _same_dtype(variable.dtype, expected.dtype):
        fail(f"variable {name!r} has dtype {variable.dtype}, the cube has {expected.dtype}")
    for other, size in expected.sizes.items():
        if other != dim and variable.sizes[other] != size:
            fail(
                f"dimension {other!r} of variable {name!r} has size {variable.sizes[other]}, "
                f"the cube has {size}"
            )
    if expected.time_units and dim in dims:
        inexact = inexact_labels(variable.values, expected.time_units)
        if inexact is not None:
            fail(
                f"variable {name!r} has the value {format_label(inexact)}, which the cube's "
                f"units {expected.time_units!r} cannot store exactly"
            )


def _check_grid(name: str, expected: xr.Variable, variable: xr.Variable, fail) -> None:
    found, wanted = variable.values, expected.values
    equal_nan = found.dtype.kind in "fcmM"
    if found.shape == wanted.shape and np.array_equal(found, wanted, equal_nan=equal_nan):
        return
    if found.shape != wanted.shape:
        fail(f"coordinate {name!r} has shape {found.shape}, the cube has {wanted.shape}")
    index = tuple(int(i) for i in np.argwhere(found != wanted)[0])
    where = f"[{', '.join(map(str, index))}]" if index else ""
    fail(
        f"coordinate {name!r} differs from the cube's: {name}{where} is "
        f"{format_label(found[index])}, the cube has {format_label(wanted[index])}"
    )


def format_label(value: Any) -> str:
    """A label as people write it: dates without a midnight time, numbers without numpy."""
    if isinstance(value, np.datetime64 | np.ndarray) and np.asarray(value).dtype.kind == "M":
        if np.isnat(value):
            return "NaT"
        for unit in ("D", "m", "s"):
            rounded = np.datetime64(value, unit)
            if rounded == value:
                return str(rounded)
        return str(np.datetime_as_string(value, unit="auto"))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _same_dtype(found: np.dtype, expected: np.dtype) -> bool:
    """Equal dtypes; datetimes and timedeltas of any resolution count as the same."""
    if found.kind in "mM":
        return found.kind == expected.kind
    return found == expected


def _greater(a: Any, b: Any) -> bool:
    return bool(a > b)


def _failer(slice_name: str):
    def fail(message: str) -> None:
        raise SliceValidationError(slice_name, message)

    return fail


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _dims(dims: tuple[str, ...]) -> str:
    return "(" + ", ".join(dims) + ")"


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(format_label(v) for v in values[:5])
    return shown + (", ..." if values.size > 5 else "")
