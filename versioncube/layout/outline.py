"""What a cube looks like: its variables, grid, length, last label and attributes.

:class:`CubeOutline` is read from the cube's head (lazily: metadata, the small grid coordinates
and the last append label only, so reading it costs the same for a cube of 10 or 10,000
appends) or taken from a first slice. (:class:`versioncube.config.outline.TargetOutline` is the
other side: what the configuration says the cube should look like.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from versioncube.errors import ConfigError, CubeNotFoundError
from versioncube.layout.encoding import is_time
from versioncube.store.dataset import open_store


@dataclasses.dataclass(frozen=True)
class VariableOutline:
    """A variable's name, dimensions, sizes and (decoded) dtype."""

    dims: tuple[str, ...]
    sizes: Mapping[str, int]
    dtype: np.dtype
    time_units: str | None  # the stored CF units of a datetime (or cftime) variable
    encoding: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # as xarray reads it


@dataclasses.dataclass(frozen=True)
class CubeOutline:
    """The shape of a cube: what every appended slice must match."""

    append_dim: str
    size: int  # length along the append dimension
    variables: Mapping[str, VariableOutline]
    grid: Mapping[str, xr.Variable]  # coordinates without the append dimension
    last_label: Any  # the last append label (numpy scalar), or None without a coordinate
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # global attributes

    @classmethod
    def of_dataset(cls, dataset: xr.Dataset, append_dim: str) -> CubeOutline:
        """Outline of a (lazily opened) cube head or of a first slice."""
        variables = {
            str(name): VariableOutline(
                dims=tuple(map(str, variable.dims)),
                sizes={str(dim): size for dim, size in variable.sizes.items()},
                dtype=variable.dtype,
                time_units=variable.encoding.get("units") if is_time(variable) else None,
                encoding=dict(variable.encoding),
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
        return cls(append_dim, size, variables, grid, last_label, dict(dataset.attrs))

    def extended(
        self, size: int, last_label: Any, attrs: Mapping[str, Any] | None = None
    ) -> CubeOutline:
        """The outline after rows were appended up to ``size``, the last labelled ``last_label``
        (None: unchanged), with the global attributes set to ``attrs`` (None: unchanged).

        Dry runs use it to check a list of slices; appends use it to skip reading the cube again
        when the branch tip is still their own last commit.
        """
        return dataclasses.replace(
            self,
            size=size,
            last_label=self.last_label if last_label is None else last_label,
            attrs=dict(self.attrs if attrs is None else attrs),
        )


def read_outline(store: Any, append_dim: str, *, where: str = "the cube") -> CubeOutline | None:
    """The outline of the cube in ``store`` (a session's store), or None if it holds none yet."""
    try:
        dataset = open_store(store, where=where, chunks=None, create_default_indexes=False)
    except CubeNotFoundError:
        return None
    if append_dim not in dataset.dims:
        if not dataset.variables:
            return None
        raise ConfigError(
            f"{where} has no dimension {append_dim!r} to append along "
            f"(its dimensions: {', '.join(map(str, dataset.dims))})"
        )
    return CubeOutline.of_dataset(dataset, append_dim)
