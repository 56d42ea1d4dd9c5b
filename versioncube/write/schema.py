"""Schema evolution: add a variable over the whole record, or drop one, each in one commit.

:func:`add_variable` creates a new variable along every row of the cube: the rows whose append
labels the given data holds get its values, every other row the fill value, which the variable
states as its ``_FillValue`` (so readers see those rows as missing, NaN once decoded), and the
commit record names the first and last label given and how many. A variable without the append
dimension is written once, whole.

The given data is checked as an append's slice is: its dimensions must be the cube's, with the
cube's sizes, its grid coordinates the cube's, every append label one the cube holds (exactly,
in the cube's stored units; add-variable never adds rows), none twice. It is stored as the first
slice of a cube would store it: its own encoding, the configuration's ``variables.NAME``
encoding over it (dtype, packing, chunks, compressors), values a packing cannot hold refused.
Without configured chunks the new variable takes the chunks of the cube's other variables along
the shared dimensions.

:func:`drop_variable` removes a variable (its array; the data stays in earlier versions until
``gc``). The append coordinate, and a coordinate another variable runs along, are refused.

Both are changes run by the commit loop (:func:`~versioncube.store.commit.commit_change`): on a
conflict they run again on the new tip, so a variable added while an append lands covers the
new rows too. Before committing, every array along the append dimension is checked to have the
cube's length: a cube that xarray cannot open is never committed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import icechunk
import numpy as np
import pandas as pd
import xarray as xr

from versioncube.config.outline import TargetOutline
from versioncube.display import html, palette
from versioncube.display.format import format_dims, format_label, label_extent, plural
from versioncube.display.json import label_to_json
from versioncube.display.results import Result
from versioncube.errors import (
    CubeNotFoundError,
    InconsistentCubeError,
    SchemaError,
    SliceValidationError,
)
from versioncube.layout.decoding import decoded_slice, packing_difference
from versioncube.layout.encoding import creation_encoding
from versioncube.layout.groups import ROOT, GroupsOutline, read_groups_outline
from versioncube.layout.levels import LevelsSetting, LevelsSpec, variable_agg_methods
from versioncube.layout.outline import CubeOutline
from versioncube.layout.validation import like
from versioncube.slices.identity import slice_ref
from versioncube.slices.opening import flat_dataset, open_slice
from versioncube.slices.options import SliceOptions
from versioncube.store.commit import AlreadyCommitted, CommitOptions, Staged, commit_change
from versioncube.store.dataset import length_mismatch, open_store
from versioncube.store.groups import LEVELS_ATTR, store_group, tree_path
from versioncube.store.repository import CubeStore
from versioncube.versions.record import CommitRecord

SchemaOperation = Literal["add-variable", "drop-variable"]

#: What ``add_variable`` takes: a DataArray or Dataset in memory, or slices (paths, URIs,
#: Datasets) holding the variable, one or many.
VariableData = xr.DataArray | xr.Dataset | str | os.PathLike[str] | Sequence[Any]


@dataclasses.dataclass(frozen=True)
class SchemaChangeResult(Result):
    """A variable added to the cube or dropped from it, in one commit."""

    operation: SchemaOperation
    variable: str
    dims: tuple[str, ...]
    snapshot_id: str
    record: CommitRecord
    rows: int  # the cube's length along the append dimension
    given: int  # add-variable: rows written with the given values (the rest: the fill value)
    fill_value: Any  # add-variable: what the other rows hold (the variable's _FillValue)

    def describe(self) -> str:
        if self.operation == "drop-variable":
            return f"dropped variable {self.variable} (snapshot {self.snapshot_id})"
        dim = self.record.append_dim
        what = f"added variable {self.variable} {format_dims(self.dims)}"
        if dim not in self.dims:
            return f"{what}, written whole (snapshot {self.snapshot_id})"
        given = f"{self.given} of {plural(self.rows, f'{dim} step')} given"
        if self.record.labels is not None:
            given += f" ({label_extent(dim, *self.record.labels)})"
        rest = self.rows - self.given
        filled = f", {rest} filled with {format_label(self.fill_value)}" if rest else ""
        return f"{what}: {given}{filled} (snapshot {self.snapshot_id})"

    def html_title(self) -> str:
        return "Add variable" if self.operation == "add-variable" else "Drop variable"

    def _repr_html_(self) -> str:
        details: list[tuple[str, object]] = [("variable", self.variable)]
        if self.operation == "add-variable":
            dim = self.record.append_dim
            details.append(("dims", format_dims(self.dims)))
            if dim in self.dims:
                details.append(("given", f"{self.given} of {plural(self.rows, 'step')}"))
                if self.record.labels is not None:
                    details.append(("labels", label_extent(dim, *self.record.labels)))
                details.append(("fill value", format_label(self.fill_value)))
        details.append(("snapshot", self.snapshot_id))
        color = palette.operation_color(self.operation)
        title = f"{self.operation} {self.variable}"
        return html.card(self.html_kind(), title, "", html.facts(details), accent=color)


@dataclasses.dataclass(frozen=True)
class _Added:
    record: CommitRecord
    dims: tuple[str, ...]
    rows: int
    given: int
    fill_value: Any


# -- the given data ---------------------------------------------------------------------------


@contextlib.contextmanager
def given_data(
    name: str,
    data: VariableData,
    append_dim: str,
    options: SliceOptions | None = None,
) -> Iterator[tuple[xr.Dataset, str]]:
    """The variable ``name`` with its coordinates, from a DataArray, a Dataset or slices (one
    or many, concatenated along the append dimension in label order), decoded; and a name for
    messages. The slices stay open while the context lasts (their data is read on write)."""
    where = f"{type(data).__name__} {name!r}"
    if isinstance(data, xr.DataArray):
        yield _one_variable(data.to_dataset(name=name), name, where), where
        return
    if isinstance(data, xr.Dataset):
        yield _one_variable(data, name, where), where
        return
    items = [data] if isinstance(data, str | os.PathLike) else list(data)
    if not items:
        raise SchemaError(f"no data given for variable {name!r}: give a slice or a DataArray")
    with contextlib.ExitStack() as stack:
        parts, names = [], []
        for item in items:
            ref = slice_ref(item, options, append_dim=append_dim)
            opened = flat_dataset(stack.enter_context(open_slice(ref, options)), ref.name)
            parts.append(_one_variable(opened, name, f"slice {ref.name}"))
            names.append(ref.name)
        where = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} slices)"
        yield _joined(parts, name, append_dim, names), where


def _one_variable(dataset: xr.Dataset, name: str, where: str) -> xr.Dataset:
    """The variable and its coordinates, CF-decoded if it came encoded (``attrs["_raw"]``
    marks such a variable, whose encoding then says how it was stored)."""
    if name not in dataset.data_vars:
        found = ", ".join(map(str, dataset.data_vars)) or "none"
        raise SchemaError(f"{where} has no variable {name!r} (its variables: {found})")
    decoded = decoded_slice(dataset[[name]])
    one = decoded.dataset
    if name in decoded.raw:
        one[name].encoding = {**one[name].encoding, RAW: True}
    return one


#: An encoding mark of a variable that came CF-encoded (removed before writing).
RAW = "_versioncube_raw"


def _joined(parts: list[xr.Dataset], name: str, append_dim: str, names: list[str]) -> xr.Dataset:
    if len(parts) == 1:
        return parts[0]
    first = parts[0][name].variable
    for part, part_name in zip(parts[1:], names[1:], strict=True):
        difference = packing_difference(part[name].encoding, first.encoding)
        if difference is not None:
            key, found, stored = difference
            raise SliceValidationError(
                part_name,
                f"variable {name!r} is stored with {key} {format_label(found)}, the first slice "
                f"with {format_label(stored)}: give slices stored alike",
            )
    if any(append_dim not in part[name].dims for part in parts):
        raise SchemaError(
            f"variable {name!r} has no dimension {append_dim!r}, so it is written once, whole: "
            f"give one slice, not {len(parts)}"
        )
    joined = xr.concat(parts, dim=append_dim, data_vars="all", coords="minimal", join="exact")
    if append_dim in joined.indexes:
        joined = joined.sortby(append_dim)
    joined[name].encoding = dict(first.encoding)
    return joined


# -- planning and writing ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Plan:
    variable: xr.Variable  # decoded values to write, with the encoding to store them with
    rows: np.ndarray | None  # cube rows of the given steps, increasing (None: no append dim)
    labels: tuple[Any, Any] | None


def plan_add(
    cube: CubeOutline,
    cube_labels: np.ndarray | None,
    dataset: xr.Dataset,
    name: str,
    where: str,
    outline: TargetOutline,
    fill_value: Any,
    raw: frozenset[str] = frozenset(),
) -> _Plan:
    """Check the given data against the cube and choose how to store it (module docstring)."""
    dim = cube.append_dim

    def fail(message: str) -> Any:
        raise SliceValidationError(where, message)

    if name in cube.variables:
        raise SchemaError(
            f"{name!r} is already a variable of the cube; drop it first (drop-variable) to "
            "replace it, or choose another name"
        )
    variable = dataset[name].variable
    sizes = _cube_sizes(cube)
    dims = tuple(map(str, variable.dims))
    unknown = [d for d in dims if d not in sizes]
    if unknown:
        fail(
            f"variable {name!r} has dimension(s) {format_dims(unknown)} the cube does not have "
            f"(its dimensions: {format_dims(sizes)})"
        )
    for other in dims:
        if other != dim and variable.sizes[other] != sizes[other]:
            fail(
                f"dimension {other!r} of variable {name!r} has size {variable.sizes[other]}, "
                f"the cube has {sizes[other]}"
            )
    for coord, expected in cube.grid.items():
        if coord in dataset.variables and dim not in dataset.variables[coord].dims:
            found = dataset.variables[coord]
            if found.shape != expected.shape or not np.array_equal(
                found.values, expected.values, equal_nan=found.dtype.kind in "fcmM"
            ):
                fail(f"coordinate {coord!r} differs from the cube's")
    rows, labels = None, None
    if dim in dims:
        rows, labels = _rows_of(dataset, variable, dim, cube_labels, cube.size, fail)
    encoding = _encoding(cube, dataset, name, outline, raw, where)
    encoding["_FillValue"] = encoding["fill_value"] = _fill(
        name, variable, encoding, fill_value, fail
    )
    to_write = xr.Variable(variable.dims, variable.data, dict(variable.attrs))
    configured_attrs = outline.variable(name).get("attrs")
    if configured_attrs:
        to_write.attrs.update(configured_attrs)
    to_write.encoding = encoding
    return _Plan(to_write, rows, labels)


def _cube_sizes(cube: CubeOutline) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for variable in cube.variables.values():
        sizes.update(variable.sizes)
    sizes[cube.append_dim] = cube.size
    return sizes


def _rows_of(
    dataset: xr.Dataset,
    variable: xr.Variable,
    dim: str,
    cube_labels: np.ndarray | None,
    size: int,
    fail: Any,
) -> tuple[np.ndarray, tuple[Any, Any] | None]:
    """The cube rows the given steps go to (by label), and their first and last label."""
    count = variable.sizes[dim]
    if count == 0:
        fail(f"has no {dim} steps")
    if cube_labels is None:  # a cube without labels: the data gives every row
        if count != size:
            fail(f"has {count} {dim} steps; the cube has no {dim} labels, so give all {size}")
        return np.arange(size), None
    if dim not in dataset.variables:
        fail(f"has no {dim} labels: they say which rows of the cube the values belong to")
    given = np.asarray([like(label, cube_labels[-1]) for label in dataset[dim].values])
    if cube_labels.dtype.kind == "M":
        given = given.astype(cube_labels.dtype)
    index = pd.Index(cube_labels)
    values, counts = np.unique(given, return_counts=True)
    if (counts > 1).any():
        fail(f"has {dim} label {format_label(values[counts > 1][0])} twice")
    rows = index.get_indexer(given)
    missing = given[rows < 0]
    if missing.size:
        shown = ", ".join(format_label(label) for label in missing[:3])
        more = f" and {missing.size - 3} more" if missing.size > 3 else ""
        fail(
            f"has {dim} label(s) {shown}{more} that the cube does not hold (it holds "
            f"{format_label(cube_labels[0])} .. {format_label(cube_labels[-1])}): a new variable "
            "gets values at existing labels only; append those steps first"
        )
    order = np.argsort(rows)
    rows = rows[order]
    return rows, (given[order][0], given[order][-1])


def _encoding(
    cube: CubeOutline,
    dataset: xr.Dataset,
    name: str,
    outline: TargetOutline,
    raw: frozenset[str],
    where: str,
) -> dict[str, Any]:
    """The new variable's encoding: as a first slice's (its own, then the configured one),
    with the cube's chunks along shared dimensions unless chunks are configured."""
    alone = xr.Dataset({name: dataset[name].variable})
    update = creation_encoding(alone, cube.append_dim, outline, raw=raw, slice_name=where)
    variable = dataset[name].variable
    encoding = {
        key: value
        for key, value in {**variable.encoding, **update.get(name, {})}.items()
        if key not in ("preferred_chunks", "chunksizes", "source", "original_shape", RAW)
    }
    configured = outline.encoding(name)
    if "chunks" not in configured and "chunksizes" not in configured:
        reference = _chunks_by_dim(cube)
        dims = tuple(map(str, variable.dims))
        encoding["chunks"] = tuple(
            min(reference.get(d, variable.sizes[d]), max(variable.sizes[d], 1))
            if d != cube.append_dim
            else reference.get(d, 1)
            for d in dims
        )
        if "shards" not in configured:
            encoding.pop("shards", None)
    return encoding


def _chunks_by_dim(cube: CubeOutline) -> dict[str, int]:
    """The chunk length of each dimension in the cube's variables (the first variable along
    the append dimension that has one says; the append coordinate's own chunks do not)."""
    found: dict[str, int] = {}
    ordered = sorted(
        cube.variables.items(), key=lambda item: (cube.append_dim not in item[1].dims, item[0])
    )
    for name, variable in ordered:
        if name == cube.append_dim or variable.dims == (name,):
            continue
        chunks = variable.encoding.get("chunks") or variable.encoding.get("preferred_chunks")
        if isinstance(chunks, Mapping):
            chunks = tuple(chunks.get(d, variable.sizes[d]) for d in variable.dims)
        if chunks is None or len(chunks) != len(variable.dims):
            continue
        for dim, length in zip(variable.dims, chunks, strict=True):
            found.setdefault(dim, int(length))
    return found


def _fill(
    name: str, variable: xr.Variable, encoding: Mapping[str, Any], fill_value: Any, fail: Any
) -> Any:
    """The stored fill value of the rows not given: the variable's ``_FillValue`` (so readers
    take them as missing)."""
    packed = any(encoding.get(key) is not None for key in ("scale_factor", "add_offset"))
    stored_dtype = np.dtype(encoding.get("dtype", variable.dtype))
    configured = encoding.get("_FillValue", encoding.get("fill_value"))
    if packed:
        if fill_value is not None and not _is_nan(fill_value):
            raise SchemaError(
                f"variable {name!r} is packed (scale_factor/add_offset): the rows not given "
                "hold its _FillValue and read as missing (NaN); leave the fill value out or "
                "give nan"
            )
        if configured is None:
            raise SchemaError(
                f"variable {name!r} is packed into {stored_dtype} without a _FillValue: set "
                f"variables.{name}.encoding._FillValue, the stored value of the rows not given"
            )
        return stored_dtype.type(configured)
    if fill_value is None:
        fill_value = configured
    if fill_value is None:
        if stored_dtype.kind in "fc":
            fill_value = np.nan
        else:
            raise SchemaError(
                f"variable {name!r} is stored as {stored_dtype}, which has no NaN: give a fill "
                "value for the rows not given (--fill-value / fill_value=), one the data never "
                "holds"
            )
    if stored_dtype.kind in "iub":
        if _is_nan(fill_value) or float(fill_value) != int(fill_value):
            raise SchemaError(
                f"fill value {format_label(fill_value)} cannot be stored in variable {name!r} "
                f"({stored_dtype}): give a whole number"
            )
        info = np.iinfo(stored_dtype) if stored_dtype.kind != "b" else None
        if info is not None and not info.min <= int(fill_value) <= info.max:
            raise SchemaError(
                f"fill value {fill_value} is outside the range of {stored_dtype} "
                f"({info.min} .. {info.max}) of variable {name!r}"
            )
    stored = stored_dtype.type(fill_value)
    if not _is_nan(stored) and variable.dtype.kind in "iufcb":
        hits = np.asarray((variable == stored).sum().values)
        if int(hits):
            fail(
                f"variable {name!r} holds its fill value {format_label(fill_value)} in "
                f"{plural(int(hits), 'cell')}, which readers would take as missing: choose a "
                "fill value the data never holds"
            )
    return stored


def _is_nan(value: Any) -> bool:
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def _write(
    session: icechunk.Session, name: str, plan: _Plan, dim: str, size: int, path: str = ROOT
) -> None:
    """Create the variable's array over every row (no chunk written) and write the given rows
    (or, without the append dimension, the whole variable), in group ``path``."""
    import zarr

    group = zarr.open_group(session.store, path=path, mode="r")
    attrs = dict(group.attrs)
    _write_variable(session, name, plan, dim, size, path)
    group = zarr.open_group(session.store, path=path, mode="r+")
    if dict(group.attrs) != attrs:  # xarray sets the group's attributes to the dataset's
        group.attrs.clear()
        group.attrs.update(attrs)


def _write_variable(
    session: icechunk.Session, name: str, plan: _Plan, dim: str, size: int, path: str = ROOT
) -> None:
    import dask.array
    from icechunk.xarray import to_icechunk

    group = path or None
    variable = plan.variable
    if plan.rows is None:
        whole = xr.Dataset({name: variable})
        to_icechunk(whole, session, group=group, mode="a")
        return
    axis = variable.dims.index(dim)
    shape = tuple(size if i == axis else n for i, n in enumerate(variable.shape))
    chunks = variable.encoding["chunks"]
    empty = xr.Variable(
        variable.dims, dask.array.zeros(shape, dtype=variable.dtype, chunks=chunks), variable.attrs
    )
    empty.encoding = dict(variable.encoding)
    xr.Dataset({name: empty}).to_zarr(
        session.store, group=group, mode="a", compute=False, consolidated=False, zarr_format=3
    )
    values = xr.Variable(variable.dims, variable.data, variable.attrs)
    for start, stop, first in _runs(plan.rows):
        part = values[{dim: slice(first, first + stop - start)}]
        to_icechunk(
            xr.Dataset({name: part}),
            session,
            group=group,
            region={dim: slice(int(start), int(stop))},
            mode="r+",
            align_chunks=True,
        )


def _runs(rows: np.ndarray) -> list[tuple[int, int, int]]:
    """Contiguous runs of rows: (cube start, cube stop, position in the given data)."""
    runs: list[tuple[int, int, int]] = []
    for position, row in enumerate(rows.tolist()):
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1, runs[-1][2])
        else:
            runs.append((row, row + 1, position))
    return runs


def _check_lengths(session: icechunk.Session, where: str, paths: Sequence[str] = (ROOT,)) -> None:
    """Refuse to commit arrays that disagree in length (never a cube xarray cannot open)."""
    for path in paths:
        mismatch = length_mismatch(session.store, path or None)
        if mismatch is not None:
            inside = f" (group {tree_path(path)})" if path else ""
            raise InconsistentCubeError(
                f"{where}{inside} would become inconsistent ({mismatch}); nothing was committed"
            )


# -- cubes of groups: every level of a pyramid, one node of a tree --------------------------------


def _groups_of(session: icechunk.Session, store: CubeStore, dim: str, name: str) -> GroupsOutline:
    cube = read_groups_outline(session.store, dim, where=store.where)
    if cube is None:
        raise CubeNotFoundError(
            f"{store.where} has no variables to add {name!r} beside: append slices first"
        )
    return cube


def _target_groups(cube: GroupsOutline, group: str | None, where: str) -> list[str]:
    """The groups a schema change touches: every level of a pyramid, else the one node
    ``group`` names (the root by default), which must exist."""
    path = store_group(group) or ROOT
    if cube.kind == "levels":
        if path:
            raise SchemaError(
                f"{where} is a pyramid: a variable is added to and dropped from every level "
                f"together, so give no group (given: {tree_path(path)})"
            )
        return [p for p in cube.groups if p != ROOT]
    if path not in cube.groups:
        found = ", ".join(tree_path(p) for p in cube.groups)
        raise SchemaError(
            f"{where} has no group {tree_path(path)} (its groups: {found}): give the path of "
            "an existing node"
        )
    return [path]


def _node_labels(
    session: icechunk.Session, cube: GroupsOutline, path: str, dim: str, where: str
) -> np.ndarray | None:
    """The append labels of a group: its own, else those of the first group that has them
    (the same in every group along the dimension)."""
    for candidate in [path, *cube.appended]:
        outline = cube.groups.get(candidate)
        if outline is None or dim not in outline.variables:
            continue
        if outline.variables[dim].dims != (dim,):
            continue
        opened = open_store(
            session.store,
            candidate or None,
            where=where,
            chunks=None,
            create_default_indexes=False,
        )
        return np.asarray(opened.variables[dim].values)
    return None


def _level_dataset(
    dataset: xr.Dataset, name: str, spec: LevelsSpec, configured: Any, level: int
) -> tuple[xr.Dataset, LevelsSpec]:
    """Level ``level`` of the given variable, with the aggregation method the configuration
    gives it (as an append's levels); and the pyramid's description with that method."""
    methods = variable_agg_methods(dataset[[name]], spec.xy_dims, configured)
    spec = dataclasses.replace(spec, agg_methods={**spec.agg_methods, **methods})
    return spec.level(dataset, level), spec


def _set_agg_methods(session: icechunk.Session, agg_methods: Mapping[str, Any]) -> None:
    """Keep the pyramid's description (the root's ``xcube_levels``) naming every variable."""
    import zarr

    root = zarr.open_group(session.store, mode="r+")
    stored = root.attrs.get(LEVELS_ATTR)
    described: dict[str, Any] = dict(stored) if isinstance(stored, Mapping) else {}
    if described.get("agg_methods") != dict(agg_methods):
        described["agg_methods"] = dict(agg_methods)
        root.attrs[LEVELS_ATTR] = described


def _group_list(cube: GroupsOutline, paths: Sequence[str]) -> tuple[str, ...] | None:
    """The groups a record names (None: a flat cube, which records none)."""
    if list(cube.groups) == [ROOT]:
        return None
    return tuple(tree_path(path) for path in paths)


@contextlib.contextmanager
def _in_group(cube: GroupsOutline, path: str) -> Iterator[None]:
    """Name the group (``level 1``, ``group /ocean``) in the errors raised inside, unless the
    cube is flat."""
    if list(cube.groups) == [ROOT]:
        yield
        return
    label = cube.label(path)
    try:
        yield
    except SliceValidationError as error:
        raise SliceValidationError(error.slice_name, f"{label}: {error.reason}") from None
    except SchemaError as error:
        raise SchemaError(f"{label}: {error}") from None


@dataclasses.dataclass(frozen=True)
class AddVariableChange:
    """Add a variable on the branch tip (run again on the new tip after a conflict): in the
    cube, in one node of a tree (``group``), or in every level of a pyramid (level 0 the given
    values, each other level those values downsampled with the variable's method)."""

    store: CubeStore
    append_dim: str
    name: str
    dataset: xr.Dataset
    where: str
    outline: TargetOutline
    fill_value: Any
    group: str | None = None
    levels: Any = None  # the configured ``levels`` setting (its aggregation methods)

    def __call__(self, session: icechunk.Session) -> Staged[_Added] | AlreadyCommitted:
        dim = self.append_dim
        cube = _groups_of(session, self.store, dim, self.name)
        paths = _target_groups(cube, self.group, self.store.where)
        raw = frozenset(str(n) for n, v in self.dataset.variables.items() if v.encoding.get(RAW))
        spec = cube.levels
        setting = LevelsSetting.parse(self.levels) if self.levels is not None else None
        configured = setting.agg_methods if setting is not None else "auto"
        plans: list[tuple[str, _Plan, int]] = []
        for level, path in enumerate(paths):
            node = cube.groups[path]
            dataset = self.dataset
            if spec is not None and level > 0:
                dataset, spec = _level_dataset(self.dataset, self.name, spec, configured, level)
            with _in_group(cube, path):
                if not node.variables:
                    raise SchemaError(
                        f"has no variables to add {self.name!r} beside: give the path of a "
                        "node that has (--group / group=)"
                    )
                labels = _node_labels(session, cube, path, dim, self.store.where)
                plan = plan_add(
                    node,
                    labels,
                    dataset,
                    self.name,
                    self.where,
                    self.outline,
                    self.fill_value,
                    raw,
                )
            if level > 0:
                plan = _fitted(plan)
            plans.append((path, plan, node.size))
        for path, plan, size in plans:
            _write(session, self.name, plan, dim, size, path)
        if spec is not None and cube.levels is not None and spec != cube.levels:
            _set_agg_methods(session, spec.agg_methods)
        _check_lengths(session, self.store.where, paths)
        path, plan, size = plans[0]
        given = 0 if plan.rows is None else len(plan.rows)
        json_labels = None
        if plan.labels is not None:
            json_labels = (label_to_json(plan.labels[0]), label_to_json(plan.labels[1]))
        record = CommitRecord(
            operation="add-variable",
            slice=None,
            slice_name=self.name,
            append_dim=dim,
            index_range=None,
            labels=json_labels,
            variables=(self.name,),
            steps=given if plan.rows is not None else None,
            groups=_group_list(cube, paths),
        )
        dims = tuple(map(str, plan.variable.dims))
        if plan.rows is None:
            message = f"add-variable {self.name}: {format_dims(dims)}, written whole"
        else:
            message = (
                f"add-variable {self.name}: {given} of {plural(size, f'{dim} step')} given"
                + (f" ({label_extent(dim, *json_labels)})" if json_labels else "")
                + f", the rest {format_label(plan.variable.encoding['_FillValue'])}"
            )
        if record.groups is not None:
            message += f" in {record.groups_text()}"
        payload = _Added(record, dims, size, given, plan.variable.encoding["_FillValue"])
        return Staged(message, {}, payload, f"variable {self.name!r}", trailer=record.trailer())


def _fitted(plan: _Plan) -> _Plan:
    """A downsampled level's plan with chunks (and shards) no bigger than the level."""
    variable = plan.variable
    encoding = dict(variable.encoding)
    chunks = encoding.get("chunks")
    if chunks is not None:
        encoding["chunks"] = tuple(
            min(int(chunk), max(int(size), 1))
            for chunk, size in zip(chunks, variable.shape, strict=True)
        )
    if encoding.get("shards") is not None and chunks is not None:
        encoding["shards"] = tuple(
            min(int(shard), -(-int(size) // int(chunk)) * int(chunk))
            for shard, chunk, size in zip(
                encoding["shards"], encoding["chunks"], variable.shape, strict=True
            )
        )
    fitted = variable.copy(deep=False)
    fitted.encoding = encoding
    return dataclasses.replace(plan, variable=fitted)


@dataclasses.dataclass(frozen=True)
class DropVariableChange:
    """Drop a variable on the branch tip (run again on the new tip after a conflict): from the
    cube, from one node of a tree (``group``), or from every level of a pyramid."""

    store: CubeStore
    append_dim: str
    name: str
    group: str | None = None

    def __call__(self, session: icechunk.Session) -> Staged[_Added] | AlreadyCommitted:
        import zarr

        dim = self.append_dim
        name, where = self.name, self.store.where
        cube = read_groups_outline(session.store, dim, where=where)
        if cube is None:
            raise CubeNotFoundError(f"{where} holds no cube yet")
        paths = _target_groups(cube, self.group, where)
        dims: tuple[str, ...] = ()
        size = 0
        for path in paths:
            with _in_group(cube, path):
                variable, size = _check_drop(session, path, name, dim, where)
            if path == paths[0]:
                dims = tuple(map(str, variable.dims))
        for path in paths:
            group = zarr.open_group(session.store, path=path, mode="r+")
            del group[name]
            listed = str(group.attrs.get("coordinates", "")).split()
            if name in listed:
                group.attrs["coordinates"] = " ".join(n for n in listed if n != name)
        if cube.levels is not None and name in cube.levels.agg_methods:
            kept = {k: v for k, v in cube.levels.agg_methods.items() if k != name}
            _set_agg_methods(session, kept)
        _check_lengths(session, where, paths)
        record = CommitRecord(
            operation="drop-variable",
            slice=None,
            slice_name=name,
            append_dim=dim,
            index_range=None,
            labels=None,
            variables=(name,),
            groups=_group_list(cube, paths),
        )
        payload = _Added(record, dims, size, 0, None)
        message = f"drop-variable {name}: {format_dims(dims)}"
        if record.groups is not None:
            message += f" in {record.groups_text()}"
        return Staged(message, {}, payload, f"variable {name!r}", trailer=record.trailer())


def _check_drop(
    session: icechunk.Session, path: str, name: str, dim: str, where: str
) -> tuple[xr.Variable, int]:
    """The variable to drop from group ``path`` and the group's length, or the reason not."""
    dataset = open_store(
        session.store, path or None, where=where, chunks=None, create_default_indexes=False
    )
    if name not in dataset.variables:
        found = ", ".join(map(str, dataset.variables)) or "none"
        raise SchemaError(f"{where} has no variable {name!r} to drop (its variables: {found})")
    if name == dim:
        raise SchemaError(f"{name!r} is the append coordinate of {where}: it cannot be dropped")
    variable = dataset.variables[name]
    if name in dataset.coords:
        users = sorted(
            str(other)
            for other, var in dataset.variables.items()
            if other != name
            and (other not in dataset.coords or name in var.dims)
            and set(var.dims) & set(variable.dims)
        )
        if users:
            raise SchemaError(
                f"{name!r} is a coordinate that {', '.join(users)} need(s) "
                f"(dimensions {format_dims(map(str, variable.dims))}): drop those first"
            )
    return variable, int(dataset.sizes.get(dim, 0))


def _result(
    operation: SchemaOperation, name: str, snapshot_id: str, done: _Added
) -> SchemaChangeResult:
    return SchemaChangeResult(
        operation=operation,
        variable=name,
        dims=done.dims,
        snapshot_id=snapshot_id,
        record=done.record,
        rows=done.rows,
        given=done.given,
        fill_value=done.fill_value,
    )


def add_variable(
    store: CubeStore,
    append_dim: str,
    name: str,
    data: VariableData,
    *,
    outline: TargetOutline,
    fill_value: Any = None,
    group: str | None = None,
    slice_options: SliceOptions | None = None,
    options: CommitOptions | None = None,
) -> SchemaChangeResult:
    """Add variable ``name`` over every row of the cube in one commit (module docstring)."""
    if not store.exists():
        raise CubeNotFoundError(f"{store.where} holds no cube yet: append slices first")
    with given_data(name, data, append_dim, slice_options) as (dataset, where):
        change = AddVariableChange(
            store, append_dim, name, dataset, where, outline, fill_value, group, outline.levels
        )
        committed = commit_change(
            store.repository, store.target, store.branch, change, options or CommitOptions()
        )
    assert committed.payload is not None
    return _result("add-variable", name, committed.snapshot_id, committed.payload)


def drop_variable(
    store: CubeStore,
    append_dim: str,
    name: str,
    *,
    group: str | None = None,
    options: CommitOptions | None = None,
) -> SchemaChangeResult:
    """Drop variable ``name`` from the cube in one commit (module docstring)."""
    if not store.exists():
        raise CubeNotFoundError(f"{store.where} holds no cube yet")
    change = DropVariableChange(store, append_dim, name, group)
    committed = commit_change(
        store.repository, store.target, store.branch, change, options or CommitOptions()
    )
    assert committed.payload is not None
    return _result("drop-variable", name, committed.snapshot_id, committed.payload)
