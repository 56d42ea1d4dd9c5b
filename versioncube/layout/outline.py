"""What a cube looks like: its variables, grid, length, last label and attributes.

:class:`CubeOutline` is read from the cube's head (:func:`read_outline`: the arrays' metadata,
the small grid coordinates and the last append label only, fetched in two trips and decoded
exactly as ``xarray.open_dataset`` decodes them, so reading it costs the same for a cube of 10
or 10,000 appends) or taken from a first slice. (:class:`versioncube.config.outline.
TargetOutline` is the other side: what the configuration says the cube should look like.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from versioncube.errors import ConfigError
from versioncube.layout.encoding import is_time
from versioncube.store.dataset import open_store
from versioncube.store.upstream import (
    ArrayInfo,
    CommittedNodes,
    OpenNodes,
    read_decoded_variables,
)


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
    #: the group and arrays as read_outline opened them, for a writer in the same session
    nodes: OpenNodes | None = dataclasses.field(default=None, compare=False, repr=False)
    #: the metadata of the group and the arrays an append wrote, as its commit stores them:
    #: the next session on that commit opens them without reading them (``extended``)
    committed: CommittedNodes | None = dataclasses.field(default=None, compare=False, repr=False)

    def opened_in(self, store: Any) -> CubeOutline:
        """This outline, kept from a commit, for a session on that commit: with the nodes that
        commit stores opened in ``store`` without reading them, when they are known."""
        if self.committed is None:
            return self
        return dataclasses.replace(self, nodes=self.committed.opened_in(store))

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
        self,
        size: int,
        last_label: Any,
        attrs: Mapping[str, Any] | None = None,
        committed: CommittedNodes | None = None,
    ) -> CubeOutline:
        """The outline after rows were appended up to ``size``, the last labelled ``last_label``
        (None: unchanged), with the global attributes set to ``attrs`` (None: unchanged), and
        the nodes the append ``committed`` (None: not known).

        Dry runs use it to check a list of slices; appends use it to skip reading the cube again
        when the branch tip is still their own last commit.
        """
        return dataclasses.replace(
            self,
            nodes=None,  # opened in a session that is committed now
            committed=committed,
            size=size,
            last_label=self.last_label if last_label is None else last_label,
            attrs=dict(self.attrs if attrs is None else attrs),
        )


def read_outline(store: Any, append_dim: str, *, where: str = "the cube") -> CubeOutline | None:
    """The outline of the cube in ``store`` (a session's store), or None if it holds none yet.

    Reads what an append checks against and nothing more: every array's metadata, the
    coordinates without the append dimension (the grid) and the last append label.
    """
    parts = read_decoded_variables(store, lambda arrays: _outline_reads(arrays, append_dim))
    if parts is None:
        return None
    variables, attrs, coord_names, arrays, nodes = parts
    sizes: dict[str, set[int]] = {}
    for info in arrays.values():
        for dim, size in zip(info.dims, info.shape, strict=False):
            sizes.setdefault(dim, set()).add(size)
    if any(len(found) > 1 for found in sizes.values()):
        open_store(store, where=where)  # raises InconsistentCubeError, naming the arrays
    if append_dim not in sizes:
        if not variables:
            return None
        raise ConfigError(
            f"{where} has no dimension {append_dim!r} to append along "
            f"(its dimensions: {', '.join(sizes)})"
        )
    size = next(iter(sizes[append_dim]))
    outlines = {
        name: VariableOutline(
            dims=tuple(map(str, variable.dims)),
            sizes={str(dim): next(iter(sizes[str(dim)])) for dim in variable.dims},
            dtype=variable.dtype,
            time_units=variable.encoding.get("units") if is_time(variable) else None,
            encoding=dict(variable.encoding),
        )
        for name, variable in variables.items()
    }
    coords = {name for name, variable in variables.items() if variable.dims == (name,)}
    grid = {
        name: variables[name].load()
        for name in sorted(coords | coord_names)
        if name in variables and append_dim not in variables[name].dims
    }
    labels = variables.get(append_dim)
    last_label = labels.values[-1] if labels is not None and size else None
    return CubeOutline(append_dim, size, outlines, grid, last_label, attrs, nodes)


def _outline_reads(arrays: Mapping[str, ArrayInfo], append_dim: str) -> dict[str, slice]:
    """What to read with the metadata: the grid coordinates whole, the last append label."""
    named = {dim for info in arrays.values() for dim in info.dims}
    for info in arrays.values():
        named.update(str(info.attrs.get("coordinates", "")).split())
    reads = {
        name: slice(None)
        for name, info in arrays.items()
        if name in named and append_dim not in info.dims
    }
    labels = arrays.get(append_dim)
    if labels is not None and labels.dims == (append_dim,) and labels.shape[0]:
        reads[append_dim] = slice(labels.shape[0] - 1, None)
    return reads
