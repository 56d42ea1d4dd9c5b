"""Whether a slice fits the cube, and what appending it will write.

:func:`plan_append` checks a slice against the cube's :class:`~versioncube.layout.outline.
CubeOutline` before anything is written and raises :class:`SliceValidationError` naming the
slice and what differs; it returns the :class:`AppendPlan`: which rows, which labels, which
variables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, NoReturn

import numpy as np
import xarray as xr

from versioncube.config.append_step import AppendStep
from versioncube.display.format import format_dims, format_label, format_step, quote_names
from versioncube.errors import SliceValidationError
from versioncube.layout.decoding import (
    packing_difference,
    packing_of,
    unpackable_text,
    unpackable_value,
)
from versioncube.layout.encoding import is_time, time_fields, time_problem_text, unstorable_time
from versioncube.layout.outline import CubeOutline, VariableOutline

INCREASING = AppendStep(1)

#: Raises the slice's SliceValidationError with a message (see ``_failer``).
Fail = Callable[[str], NoReturn]


@dataclasses.dataclass(frozen=True)
class AppendPlan:
    """What appending one slice will do: which rows, which labels, which variables to write."""

    slice_name: str
    index_range: tuple[int, int]
    labels: tuple[Any, Any] | None  # first and last append label
    dataset: xr.Dataset  # what to write: for an append, only variables along the append dim
    creates_cube: bool


def plan_first_slice(
    dataset: xr.Dataset, append_dim: str, slice_name: str, *, step: AppendStep = INCREASING
) -> AppendPlan:
    """Check that a slice can start a cube along ``append_dim``."""
    labels = _check_append_dim(dataset, append_dim, slice_name, step)
    count = dataset.sizes[append_dim]
    return AppendPlan(slice_name, (0, count), labels, dataset, creates_cube=True)


def plan_append(
    cube: CubeOutline,
    dataset: xr.Dataset,
    slice_name: str,
    *,
    step: AppendStep = INCREASING,
    converted: Collection[str] = (),
    raw: Collection[str] = (),
    follows: bool = True,
) -> AppendPlan:
    """Check a slice against the cube; everything that differs is reported by name.

    ``follows`` False leaves out the check that the slice's labels follow the cube's last one
    (writes by label place them among the cube's, see :mod:`versioncube.write.updates`).

    ``step`` is how labels must follow each other (the cube's ``append_step``); variables in
    ``converted`` have a configured encoding that converts any numeric dtype on write; variables
    in ``raw`` came CF-encoded (see :mod:`versioncube.layout.decoding`), and must be packed as
    the cube's unless they are converted.
    """
    dim = cube.append_dim
    labels = _check_append_dim(dataset, dim, slice_name, step)
    fail = _failer(slice_name)

    names = set(map(str, dataset.variables))
    missing = sorted(set(cube.variables) - names)
    extra = sorted(names - set(cube.variables))
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"lacks variable(s) {quote_names(missing)} that the cube has")
        if extra:
            problems.append(f"has variable(s) {quote_names(extra)} that the cube does not have")
        hint = ""
        if missing and not extra:  # e.g. a variable added to the cube since (add-variable)
            hint = (
                " (every slice must give the cube's variables: derive them in a slice_source, "
                "or drop them with drop-variable)"
            )
        fail(" and ".join(problems) + hint)

    for name in sorted(cube.variables):
        expected, variable = cube.variables[name], dataset.variables[name]
        if name in raw and name not in converted:  # first: it says why the dtype differs
            _check_packing(name, expected, variable, fail)
        _check_variable(name, expected, variable, dim, fail, name in converted)
        _check_packable(name, expected.encoding, variable, fail)
    for name, grid_values in cube.grid.items():
        _check_grid(name, grid_values, dataset.variables[name], fail)
    if follows and labels is not None and cube.last_label is not None:
        _check_follows(cube.last_label, like(labels[0], cube.last_label), dim, step, fail)

    count = dataset.sizes[dim]
    to_write = dataset.drop_vars(
        [name for name in dataset.variables if dim not in dataset[name].dims]
    )
    return AppendPlan(
        slice_name, (cube.size, cube.size + count), labels, to_write, creates_cube=False
    )


def _check_append_dim(
    dataset: xr.Dataset, dim: str, slice_name: str, step: AppendStep
) -> tuple[Any, Any] | None:
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
    if values.size > 1 and not all(_in_order(a, b, step) for a, b in itertools.pairwise(values)):
        way = "increasing" if step.direction > 0 else "decreasing"
        fail(f"{dim} labels are not strictly {way}: {_preview(values)}")
    for a, b in itertools.pairwise(values):
        _check_step(a, b, dim, step, fail)
    return values[0], values[-1]


def _check_follows(last: Any, first: Any, dim: str, step: AppendStep, fail: Fail) -> None:
    """Check the slice's first label against the cube's last one."""
    if not _in_order(last, first, step):
        where = "after" if step.direction > 0 else "before"
        fail(
            f"{dim} label {format_label(first)} is not {where} the cube's last label "
            f"{format_label(last)}: appending it would duplicate or disorder {dim} "
            "(to rewrite existing labels, roll back first)"
        )
    _check_step(last, first, dim, step, fail, after="the cube's last label ")


def check_steps(
    pairs: Iterable[tuple[Any, Any]], dim: str, step: AppendStep, slice_name: str
) -> None:
    """Check that each pair of neighbouring labels (``a`` then ``b``) follows the cube's
    ``append_step`` (the neighbours a write by label creates)."""
    fail = _failer(slice_name)
    for a, b in pairs:
        _check_step(a, b, dim, step, fail, after="the cube's label ")


def _check_step(a: Any, b: Any, dim: str, step: AppendStep, fail: Fail, after: str = "") -> None:
    """Check that label ``b`` follows ``a`` by exactly the configured step, if there is one."""
    if step.size is None:
        return
    kind = "M" if is_time(np.asarray([b])) else np.asarray(b).dtype.kind
    if step.calendar_months is not None:
        if kind != "M":
            fail(f"append_step {step.text!r} is a time step, but the {dim} labels are not times")
        months = months_between(a, b)
        if months != step.calendar_months:
            fail(
                f"{dim} label {format_label(b)} follows {after}{format_label(a)} by "
                f"{months} calendar month(s), but append_step is {step.text!r}"
            )
        return
    expected = step.delta(kind)
    if expected is None:
        fail(f"append_step {step.text!r} is a time step, but the {dim} labels are not times")
    found = b - a
    if isinstance(found, dt.timedelta):  # cftime labels
        found = np.timedelta64(found)
    exact = np.isclose(found, expected, rtol=1e-9, atol=0) if kind in "fc" else found == expected
    if not exact:
        fail(
            f"{dim} label {format_label(b)} follows {after}{format_label(a)} by "
            f"{format_step(found)}, but append_step is {step.text!r}"
        )


def _check_variable(
    name: str,
    expected: VariableOutline,
    variable: xr.Variable,
    dim: str,
    fail: Fail,
    converted: bool = False,
) -> None:
    dims = tuple(map(str, variable.dims))
    if dims != expected.dims:
        fail(
            f"variable {name!r} has dimensions {format_dims(dims)}, "
            f"the cube has {format_dims(expected.dims)}"
        )
    both_times = expected.time_units is not None and is_time(variable)
    converted = converted or _packed(expected)
    if not both_times and not _same_dtype(variable.dtype, expected.dtype, converted):
        fail(f"variable {name!r} has dtype {variable.dtype}, the cube has {expected.dtype}")
    for other, size in expected.sizes.items():
        if other != dim and variable.sizes[other] != size:
            fail(
                f"dimension {other!r} of variable {name!r} has size {variable.sizes[other]}, "
                f"the cube has {size}"
            )
    if both_times and dim in dims:
        problem = unstorable_time(variable.values, expected.encoding)
        if problem is not None:
            fail(time_problem_text(name, problem, expected.encoding))


def _check_packable(
    name: str, encoding: Mapping[str, Any], variable: xr.Variable, fail: Fail
) -> None:
    """Values beyond an integer packing would wrap around: refuse them."""
    value = unpackable_value(variable.data, encoding)
    if value is not None:
        fail(unpackable_text(name, value, encoding))


def _packed(expected: VariableOutline) -> bool:
    """Whether the cube packs the variable (scale_factor/add_offset): any numbers are packed
    on write, and its decoded dtype follows the stored attributes, not the slice's."""
    return any(expected.encoding.get(key) is not None for key in ("scale_factor", "add_offset"))


def _check_packing(name: str, expected: VariableOutline, variable: xr.Variable, fail: Fail) -> None:
    """A raw slice's integers mean what the cube's mean only when they are packed alike."""
    difference = packing_difference(variable.encoding, expected.encoding)
    if difference is not None:
        key, found, stored = difference
        if _packed(expected):
            how = f"is packed with {key} {format_label(found)}, the cube with {stored}"
        else:
            packing = ", ".join(
                f"{key} {format_label(value)}"
                for key, value in packing_of(variable.encoding).items()
            )
            how = f"is packed ({packing}), the cube stores it unpacked"
        fail(
            f"variable {name!r} {how}: its stored values mean other numbers than the cube's "
            f"(set variables.{name}.encoding to say how the cube packs it, or open the slice "
            "with CF decoding)"
        )


def _check_grid(name: str, expected: xr.Variable, variable: xr.Variable, fail: Fail) -> None:
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


def _same_dtype(found: np.dtype, expected: np.dtype, converted: bool = False) -> bool:
    """Equal dtypes; datetimes and timedeltas of any resolution count as the same.

    A ``converted`` variable (its configured encoding sets dtype or packing) takes any numeric
    dtype: the encoding turns it into what the cube stores.
    """
    if found.kind in "mM":
        return found.kind == expected.kind
    if converted and found.kind in "biuf" and expected.kind in "biuf":
        return True
    return found == expected


def like(label: Any, other: Any) -> Any:
    """``label`` as the same kind of time as ``other`` (cftime or datetime64), to compare them;
    any other label as it is."""
    if isinstance(other, np.datetime64) and hasattr(label, "calendar"):
        return np.datetime64(label.isoformat(), "ns")
    if hasattr(other, "calendar") and isinstance(label, np.datetime64):
        import cftime

        return cftime.datetime(*time_fields(label)[:7], calendar=other.calendar)
    return label


def months_between(a: Any, b: Any) -> int:
    """Calendar months from time ``a`` to time ``b`` (day and time of day ignored)."""
    (year_a, month_a, *_), (year_b, month_b, *_) = time_fields(a), time_fields(b)
    return (year_b - year_a) * 12 + month_b - month_a


def _in_order(a: Any, b: Any, step: AppendStep) -> bool:
    """Whether label ``b`` may follow ``a`` in the step's direction."""
    return bool(b > a) if step.direction > 0 else bool(b < a)


def _failer(slice_name: str) -> Fail:
    def fail(message: str) -> NoReturn:
        raise SliceValidationError(slice_name, message)

    return fail


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(format_label(v) for v in values[:5])
    return shown + (", ..." if values.size > 5 else "")


def check_unchanging(
    cube: CubeOutline, dataset: xr.Dataset, slice_name: str, *, converted: Collection[str] = ()
) -> None:
    """Check a part of a slice that is written once, with the cube, and never appended to (a
    group without the append dimension): the same variables, dims, dtypes, sizes and grid."""
    fail = _failer(slice_name)
    _check_same_names(cube, dataset, fail)
    for name in sorted(cube.variables):
        expected, variable = cube.variables[name], dataset.variables[name]
        _check_variable(name, expected, variable, cube.append_dim, fail, name in converted)
    for name, grid_values in cube.grid.items():
        _check_grid(name, grid_values, dataset.variables[name], fail)


def _check_same_names(cube: CubeOutline, dataset: xr.Dataset, fail: Fail) -> None:
    names = set(map(str, dataset.variables))
    missing = sorted(set(cube.variables) - names)
    extra = sorted(names - set(cube.variables))
    problems = []
    if missing:
        problems.append(f"lacks variable(s) {quote_names(missing)} that the cube has")
    if extra:
        problems.append(f"has variable(s) {quote_names(extra)} that the cube does not have")
    if problems:
        fail(" and ".join(problems))
