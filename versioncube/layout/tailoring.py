"""Shape a slice as the target outline says, before it is checked against the cube.

In zappend's order: the variables are selected (``included_variables``, which keeps the
coordinates the checks need as well, and ``excluded_variables``),
``fixed_dims`` and each configured variable's ``dims`` are checked, and a configured variable
that the slice lacks is created, filled with its fill value. Problems raise
:class:`SliceValidationError` naming the slice; nothing has been written at that point.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from versioncube.config.outline import ResolvedOutline, TargetOutline
from versioncube.display.format import format_dims, quote_names
from versioncube.errors import ConfigError, SliceValidationError


def tailor_slice(dataset: xr.Dataset, outline: ResolvedOutline, slice_name: str) -> xr.Dataset:
    """The slice with the outline's variables, checked against its fixed and configured dims."""
    _check_fixed_dims(dataset, outline, slice_name)
    names = outline.selected_variables(map(str, dataset.variables))
    if outline.included_variables:
        kept = needed_coordinates(dataset, names, outline.append_dim)
        names += [name for name in kept if name not in outline.excluded_variables]
    unknown = [name for name in names if name not in dataset.variables]
    unknown = [name for name in unknown if name not in outline.variables]
    if unknown:
        raise SliceValidationError(
            slice_name,
            f"has no variable(s) {quote_names(unknown)} named in included_variables, and the "
            "configuration does not describe them in variables",
        )
    dataset = dataset.drop_vars([name for name in dataset.variables if name not in names])
    for name in names:
        dims = outline.variable(name).get("dims")
        if name in dataset.variables:
            found = tuple(map(str, dataset.variables[name].dims))
            if dims is not None and found != tuple(dims):
                raise SliceValidationError(
                    slice_name,
                    f"variable {name!r} has dimensions {format_dims(found)}, "
                    f"but variables.{name}.dims is {format_dims(dims)}",
                )
        else:
            dataset = dataset.assign({name: filled_variable(name, outline, dataset, slice_name)})
    return dataset


def needed_coordinates(dataset: xr.Dataset, names: list[str], append_dim: str | None) -> list[str]:
    """The coordinates that checking a slice needs but ``included_variables`` leaves out: the
    append coordinate (for the label checks) and the coordinates of the dimensions the
    included variables use (for the grid checks)."""
    wanted = [append_dim] if append_dim is not None else []
    for name in names:
        if name in dataset.variables:
            wanted += map(str, dataset.variables[name].dims)
    found = [dim for dim in dict.fromkeys(wanted) if dim in dataset.variables]
    return [name for name in found if name not in names]


def filled_variable(
    name: str, outline: TargetOutline, dataset: xr.Dataset, slice_name: str
) -> xr.Variable:
    """A configured variable the slice lacks: missing values (NaN, or zeros without a fill value).

    Floats, and integers with a fill value, are NaN in memory, which the encoding stores as the
    fill value; integers without one are zeros.
    """
    settings = outline.variable(name)
    dims, encoding = settings.get("dims"), settings.get("encoding") or {}
    if dims is None or "dtype" not in encoding:
        raise SliceValidationError(
            slice_name,
            f"lacks the configured variable {name!r}; to create it, the configuration needs "
            f"variables.{name}.dims and variables.{name}.encoding.dtype",
        )
    absent = [dim for dim in dims if dim not in dataset.sizes]
    if absent:
        raise SliceValidationError(
            slice_name,
            f"has no dimension(s) {quote_names(absent)} to create the configured variable {name!r} "
            f"with (variables.{name}.dims is {format_dims(dims)})",
        )
    storage = np.dtype(encoding["dtype"])
    fill = encoding.get("fill_value", encoding.get("_FillValue"))
    if storage.kind == "f" or fill is not None:
        memory, value = (storage if storage.kind == "f" else np.dtype("float64")), np.nan
    else:
        memory, value = storage, 0
    shape = tuple(dataset.sizes[dim] for dim in dims)
    return xr.Variable(dims, np.full(shape, value, dtype=memory), settings.get("attrs") or {})


def _check_fixed_dims(dataset: xr.Dataset, outline: ResolvedOutline, slice_name: str) -> None:
    if outline.append_dim in outline.fixed_dims:
        raise ConfigError(
            f"fixed_dims names the append dimension {outline.append_dim!r}, whose size grows with "
            "every append; remove it from fixed_dims"
        )
    for dim, size in outline.fixed_dims.items():
        if dim not in dataset.sizes:
            raise SliceValidationError(
                slice_name, f"has no dimension {dim!r}, which fixed_dims sets to {size}"
            )
        if dataset.sizes[dim] != size:
            raise SliceValidationError(
                slice_name,
                f"dimension {dim!r} has size {dataset.sizes[dim]}, but fixed_dims.{dim} is {size}",
            )
