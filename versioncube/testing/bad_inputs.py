"""The catalogue of bad input versioncube is tried with (tests/test_bad_input.py runs it, and
docs/generate_reference.py turns it into docs/bad-input.md).

It is here, not in tests/, because both of them import it: the page lists exactly the cases
the tests try, with the errors they raise.

Each case is one mistake of one of five kinds (:data:`KINDS`): a slice that does not fit, a
configuration that cannot work, a target that cannot hold a cube, or a version that does not
exist (or a version operation that is not allowed). A case prepares its mistake in a
:class:`Scene` (a folder for files, and a cube of good days: in memory, on local disk, or one
whose early commits gc removed) and hands it back as an :class:`Attempt`: the same mistake as a
Python call and as a command line. Both must fail with the case's error in one line, and leave
every branch and tag (and on local disk every file) of the cube, and of any other target the
mistake names, as they were; the next good slice must then append normally.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import icechunk
import numpy as np
import pandas as pd
import xarray as xr
import yaml

import versioncube
from versioncube.errors import TargetError
from versioncube.samples import sample_slice
from versioncube.store.target import parse_target
from versioncube.testing import files
from versioncube.versions.refs import known_snapshot_ids

Kind = Literal["slice", "configuration", "target", "version", "schema"]
KINDS: dict[Kind, str] = {
    "slice": "a slice that cannot be read, or does not fit the cube",
    "configuration": "a setting or configuration file that cannot work",
    "target": "a target that cannot hold a cube",
    "version": "a version that does not exist, or an operation on versions that is not allowed",
    "schema": "a variable that cannot be added to the cube (add-variable) or dropped from it",
}
#: The cube a case is tried against: two good days in memory or on local disk, or three days
#: on local disk whose first two commits gc removed.
CubeKind = Literal["memory", "local", "expired"]

SHAPE = (6, 12)
DAYS = ("2024-01-01", "2024-01-02")
NEXT_DAY = "2024-01-03"
#: An environment variable that a configuration file names and nobody sets.
UNSET_VARIABLE = "VERSIONCUBE_CATALOGUE_UNSET"
#: The expired history: commits older than this are expired by gc (after waiting this long).
EXPIRY_AGE = dt.timedelta(seconds=0.5)


def good(day: str = NEXT_DAY) -> xr.Dataset:
    """A slice that fits the cubes of the catalogue (by default, the next day of two)."""
    return sample_slice(day, shape=SHAPE)


@dataclasses.dataclass(frozen=True)
class Scene:
    """Where a case makes its mistake: a folder for its files, and a cube of good days."""

    folder: Path
    target: str
    days: tuple[str, ...] = DAYS  # the cube's labels, one commit each
    expired: tuple[str, ...] = ()  # the snapshot ids gc removed, newest first
    between: dt.datetime | None = None  # a moment between two expired commits
    s3_options: Mapping[str, Any] | None = None  # a running S3 server's, for cases that need it

    def cube(self, branch: str = "main") -> versioncube.Cube:
        return versioncube.open_cube(self.target, branch)

    @property
    def next_day(self) -> str:
        """The label of the good slice that appends after the case."""
        return f"{pd.Timestamp(self.days[-1]) + pd.Timedelta(days=1):%Y-%m-%d}"

    @property
    def new_target(self) -> str:
        """A target beside the cube where nothing exists yet (for first-slice mistakes)."""
        return f"{self.target}-new"


#: How the Python API names a slice given as a Dataset (by its content's fingerprint).
DATASET_NAME = re.compile(r"dataset (?:xxh3|sha256):[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One mistake, prepared: as a Python call and as ``versioncube`` command-line arguments."""

    call: Callable[[], object]
    command: tuple[str, ...]
    watched: str | None = None  # another target the mistake names, which must stay as it was
    slice_file: str | None = None  # the file name a Dataset slice has on the command line
    cli_says: str | None = None  # the command line cannot make the mistake alike: it says this

    def cli_message(self, message: str) -> str | None:
        """The message the command line must give, from the Python one (the slice named by
        its file); None when the command line makes another mistake (see ``cli_says``)."""
        if self.cli_says is not None:
            return None
        if self.slice_file is not None:
            return DATASET_NAME.sub(self.slice_file, message, count=1)
        return message


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One kind of bad input: what is tried, the error class it must raise and a fragment of
    its message (so that it fails for the reason the case is about)."""

    what: str
    kind: Kind
    error: type[versioncube.VersionCubeError]
    says: str
    attempt: Callable[[Scene], Attempt]
    cube: CubeKind = "memory"
    cube_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    needs_s3: bool = False  # a running S3 server (Scenes.s3_options)
    slow: bool = False  # seconds to prepare (the tests mark it, and the S3 cases, slow)
    #: dask settings the tests try the case with, to wait less (docs/bad-input.md is made
    #: without them, and shows what users get)
    test_dask_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# -- making attempts ----------------------------------------------------------------------------


def _appending(
    scene: Scene,
    item: Any,
    *,
    target: str | None = None,
    settings: Mapping[str, Any] | None = None,
    config: Path | None = None,
    cli_says: str | None = None,
) -> Attempt:
    """Append ``item`` with ``settings`` (and a configuration file): in Python as keywords,
    on the command line as a YAML file; a Dataset becomes a NetCDF file there."""
    target = target or scene.target
    settings = dict(settings or {})
    config_files = [config] if config else []
    python_configs = [str(path) for path in config_files]
    if settings:
        config_files.append(scene.folder / "settings.yaml")
        config_files[-1].write_text(yaml.safe_dump(settings))
    slice_file = None
    if isinstance(item, xr.Dataset):
        slice_file = "slice.nc"
        argument = str(scene.folder / slice_file)
        item.to_netcdf(argument)
    else:
        argument = os.fspath(item) if isinstance(item, str | os.PathLike) else str(item)
    command = ["append", "-t", target]
    for path in config_files:
        command += ["-c", str(path)]

    def call() -> object:
        return versioncube.append([item], python_configs or None, target_dir=target, **settings)

    return Attempt(
        call=call,
        command=(*command, argument),
        watched=None if target == scene.target else target,
        slice_file=slice_file,
        cli_says=cli_says,
    )


def _writing(scene: Scene, item: xr.Dataset, mode: str) -> Attempt:
    """Write ``item`` by label in ``mode`` (``write --mode``); a NetCDF file on the command
    line."""
    argument = str(scene.folder / "slice.nc")
    item.to_netcdf(argument)
    return Attempt(
        lambda: scene.cube().write(item, mode=mode),
        ("write", "-t", scene.target, "--mode", mode, argument),
        slice_file="slice.nc",
    )


def _deleting(scene: Scene, labels: str) -> Attempt:
    return _asking(scene, lambda cube: cube.delete(labels), "delete", "--labels", labels)


def _asking(scene: Scene, call: Callable[[versioncube.Cube], object], *command: str) -> Attempt:
    """A version operation on the scene's cube; ``command`` follows ``versioncube COMMAND -t
    TARGET`` (the first word is the command)."""
    name, *rest = command
    return Attempt(lambda: call(scene.cube()), (name, "-t", scene.target, *rest))


def _file(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def _truncated(scene: Scene) -> Attempt:
    path = scene.folder / "2024-01-03.nc"
    good().to_netcdf(path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # as a download cut off half way leaves it
    return _appending(scene, path)


def _not_a_zarr_store(scene: Scene) -> Attempt:
    (scene.folder / "2024-01-03.zarr").mkdir()
    return _appending(scene, scene.folder / "2024-01-03.zarr")


def _unknown_codec(scene: Scene) -> Attempt:
    """A Zarr v2 slice whose metadata names a codec no installed package implements."""
    import json

    path = scene.folder / "2024-01-03.zarr"
    good().to_zarr(path, zarr_format=2, consolidated=False)
    metadata = json.loads((path / "tas" / ".zarray").read_text())
    metadata["compressor"] = {"id": "jpeg2k", "level": 3}
    (path / "tas" / ".zarray").write_text(json.dumps(metadata))
    return _appending(scene, path)


def _raw_packed(scene: Scene) -> Attempt:
    """A slice opened with decode_cf=False whose packing the cube does not have."""
    path = scene.folder / "packed.nc"
    packing = {"dtype": "int16", "scale_factor": 0.01, "add_offset": 273.15, "_FillValue": -1}
    good().to_netcdf(path, encoding={"tas": packing})
    raw = xr.open_dataset(path, decode_cf=False).load()
    return _appending(scene, raw, cli_says="variable 'tas'")


def _export_over_files(scene: Scene) -> Attempt:
    """An export to a folder that holds a user's file."""
    dest = scene.folder / "export"
    dest.mkdir()
    _file(dest, "notes.txt", b"mine")
    return _asking(scene, lambda cube: cube.export(dest), "export", str(dest))


def _nan_in_grid(scene: Scene) -> Attempt:
    item = good()
    lat = item.lat.values.copy()
    lat[2] = np.nan
    return _appending(scene, item.assign_coords(lat=lat))


def _data_folder(scene: Scene) -> Attempt:
    data = scene.folder / "data"
    data.mkdir()
    good().to_netcdf(data / "2024-01-03.nc")
    return _appending(scene, data / "2024-01-03.nc", target=str(data))


def _slice_as_target(scene: Scene) -> Attempt:
    path = scene.folder / "2024-01-03.nc"
    good().to_netcdf(path)
    return _appending(scene, path, target=str(path))  # the arguments swapped


def _missing_bucket(scene: Scene) -> Attempt:
    if scene.s3_options is None:
        raise RuntimeError("this case needs a running S3 server (Scene.s3_options)")
    options = {"target_storage_options": dict(scene.s3_options)}
    return _appending(scene, good(), target="s3://no-such-bucket/cube", settings=options)


def _config_file(scene: Scene, text: str) -> Path:
    path = scene.folder / "config.yaml"
    path.write_text(text)
    return path


def _unset_variable(scene: Scene) -> Attempt:
    if UNSET_VARIABLE in os.environ:
        raise RuntimeError(f"{UNSET_VARIABLE} must not be set for this case")
    config = _config_file(scene, f"attrs:\n  source: ${{{UNSET_VARIABLE}}}\n")
    return _appending(scene, good(), config=config)


def _first_slice(settings: Mapping[str, Any]) -> Callable[[Scene], Attempt]:
    """A configuration that cannot start a cube, tried on a target where nothing is yet."""
    return lambda scene: _appending(scene, good(), target=scene.new_target, settings=settings)


def _encoding(**encoding: Any) -> dict[str, Any]:
    return {"variables": {"tas": {"encoding": encoding}}}


def _before_the_first_commit(scene: Scene) -> Attempt:
    first = scene.cube().log()[-1].written_at
    moment = (first - dt.timedelta(microseconds=1)).isoformat()
    return _asking(scene, lambda cube: cube.info(moment), "show", "--at", moment)


def _ambiguous_prefix(scene: Scene) -> Attempt:
    """Commit empty snapshots on a side branch until two ids share their first 4 characters
    (the shortest prefix accepted): about 1300 commits on average, and seconds, as each commit
    takes longer the more snapshots the repository has (0.6 ms at first, 4 ms by 2500)."""
    repo = scene.cube().repository
    root = list(repo.ancestry(branch="main"))[-1].id  # Icechunk's empty first snapshot
    repo.create_branch("noise", root)
    seen: set[str] = set()
    prefix = ""
    while prefix not in seen:
        seen.add(prefix)
        prefix = repo.writable_session("noise").commit("noise", allow_empty=True)[:4]
    return _asking(scene, lambda cube: cube.info(prefix), "show", "--at", prefix)


def _tagged(scene: Scene, name: str, *, delete: bool = False) -> None:
    scene.cube().tag(name, message="release")
    if delete:
        scene.cube().repository.delete_tag(name)  # versioncube never deletes tags; users can


def _misspelt_tag(scene: Scene) -> Attempt:
    _tagged(scene, "v1.0")
    return _asking(scene, lambda cube: cube.info("v1.1"), "show", "--at", "v1.1")


def _existing_tag(scene: Scene) -> Attempt:
    _tagged(scene, "v1")
    return _asking(scene, lambda cube: cube.tag("v1"), "tag", "v1")


def _deleted_tag(scene: Scene) -> Attempt:
    _tagged(scene, "v1", delete=True)
    return _asking(scene, lambda cube: cube.tag("v1"), "tag", "v1")


def _existing_branch(scene: Scene) -> Attempt:
    scene.cube().create_branch("staging")
    return Attempt(
        lambda: scene.cube().create_branch("staging"),
        ("branch", "-t", scene.target, "create", "staging"),
    )


def _missing_branch(scene: Scene) -> Attempt:
    return Attempt(
        lambda: scene.cube("staging").log(), ("log", "-t", scene.target, "-b", "staging")
    )


def _not_a_fast_forward(scene: Scene) -> Attempt:
    """main has a commit that staging lacks: staging started one commit back, then grew."""
    scene.cube().create_branch("staging", at="main~1")
    scene.cube("staging").append(good(scene.days[-1]).assign_attrs(source="staging"))
    return _asking(scene, lambda cube: cube.promote("staging"), "promote", "staging")


def _tree_of_references(scene: Scene) -> str:
    """A cube made of references to a NetCDF4 file with groups (a tree), beside the scene's
    cube; its target."""
    day = good(scene.days[-1])
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(coords={"time": day.time}), "/air": day.drop_vars("time")}
    )
    path = scene.folder / "tree-0.nc"
    tree.to_netcdf(path, engine="netcdf4")
    target = str(scene.folder / "tree-cube")
    versioncube.append([str(path)], target_dir=target, virtual=True)
    return target


def _netcdf3_into_a_tree(scene: Scene) -> Attempt:
    target = _tree_of_references(scene)
    path = scene.folder / "flat.nc"
    good().to_netcdf(path, engine="scipy")
    return _appending(scene, path, target=target, settings={"virtual": True})


def _virtual_group_of_a_tree(scene: Scene) -> Attempt:
    target = _tree_of_references(scene)
    day = good()
    path = scene.folder / "tree-1.nc"
    xr.DataTree.from_dict(
        {"/": xr.Dataset(coords={"time": day.time}), "/air": day.drop_vars("time")}
    ).to_netcdf(path, engine="netcdf4")
    settings = {"virtual": True, "virtual_group": "air"}
    return _appending(scene, path, target=target, settings=settings)


def _changed_node_of_a_tree(scene: Scene) -> Attempt:
    """A tree cube whose node /grid has no time; a write by label brings /grid changed."""
    target = str(scene.folder / "tree-cube")

    def tree(area: list[float]) -> xr.DataTree:
        grid = xr.Dataset({"area": ("x", area)}, coords={"x": [0.5, 1.5, 2.5]})
        return xr.DataTree.from_dict({"/": good(scene.days[-1]), "/grid": grid})

    versioncube.append([tree([1.0, 2.0, 3.0])], target_dir=target)
    path = scene.folder / "tree-1.nc"
    tree([9.0, 9.0, 9.0]).to_netcdf(path, engine="netcdf4")
    return Attempt(
        lambda: versioncube.open_cube(target).write(str(path), mode="upsert"),
        ("write", "-t", target, "--mode", "upsert", str(path)),
        watched=target,
    )


# -- the catalogue ------------------------------------------------------------------------------


SLICE_CASES = [
    BadInput(
        "a truncated NetCDF file",
        "slice",
        versioncube.SliceOpenError,
        "cannot be read",
        _truncated,
    ),
    BadInput(
        "a file of random bytes",
        "slice",
        versioncube.SliceOpenError,
        "not a NetCDF, HDF5 or Zarr file",
        lambda scene: _appending(scene, _file(scene.folder, "junk.nc", bytes(range(256)) * 8)),
    ),
    BadInput(
        "an empty (0-byte) file",
        "slice",
        versioncube.SliceOpenError,
        "file is empty (0 bytes)",
        lambda scene: _appending(scene, _file(scene.folder, "empty.nc", b"")),
    ),
    BadInput(
        "a file that does not exist",
        "slice",
        versioncube.SliceNotFoundError,
        "file not found",
        lambda scene: _appending(scene, scene.folder / "2024-01-03.nc"),
    ),
    BadInput(
        "an unreachable URI",
        "slice",
        versioncube.SliceNotFoundError,
        "http://127.0.0.1:9/2024-01-03.nc",
        lambda scene: _appending(scene, "http://127.0.0.1:9/2024-01-03.nc"),
    ),
    BadInput(
        "a folder that is not a Zarr store",
        "slice",
        versioncube.SliceNotFoundError,
        "No group found",
        _not_a_zarr_store,
    ),
    BadInput(
        "something that is not a slice",
        "slice",
        versioncube.SliceTypeError,
        "is of type int; expected a path, a URI or an xarray Dataset",
        # on the command line every slice is a path: 42 is a file that is not there
        lambda scene: _appending(scene, 42, cli_says="file not found"),
    ),
    BadInput(
        "a variable of another dtype",
        "slice",
        versioncube.SliceValidationError,
        "variable 'tas' has dtype float64, the cube has float32",
        lambda scene: _appending(scene, good().assign(tas=good().tas.astype("float64"))),
    ),
    BadInput(
        "a NaN in a grid coordinate",
        "slice",
        versioncube.SliceValidationError,
        "lat[2] is nan",
        _nan_in_grid,
    ),
    BadInput(
        "a missing (NaT) time label",
        "slice",
        versioncube.SliceValidationError,
        "has missing (NaT) time labels",
        lambda scene: _appending(
            scene, good().assign_coords(time=np.array(["NaT"], dtype="datetime64[ns]"))
        ),
    ),
    BadInput(
        "a slice without the time coordinate",
        "slice",
        versioncube.SliceValidationError,
        "lacks variable(s) 'time'",
        lambda scene: _appending(scene, good().drop_vars("time")),
    ),
    BadInput(
        "another grid size",
        "slice",
        versioncube.SliceValidationError,
        "has size 7, the cube has 6",
        lambda scene: _appending(scene, sample_slice(NEXT_DAY, shape=(7, 12))),
    ),
    BadInput(
        "the same grid size, shifted",
        "slice",
        versioncube.SliceValidationError,
        "coordinate 'lon' differs from the cube's",
        lambda scene: _appending(scene, good().assign_coords(lon=good().lon + 0.5)),
    ),
    BadInput(
        "an empty slice (no time step)",
        "slice",
        versioncube.SliceValidationError,
        "is empty: dimension 'time' has size 0",
        lambda scene: _appending(scene, good().isel(time=slice(0, 0))),
    ),
    BadInput(
        "a slice without the append dimension",
        "slice",
        versioncube.SliceValidationError,
        "has no dimension 'time' to append along",
        lambda scene: _appending(scene, good().isel(time=0)),
    ),
    BadInput(
        "a variable missing",
        "slice",
        versioncube.SliceValidationError,
        "lacks variable(s) 'pr'",
        lambda scene: _appending(scene, good().drop_vars("pr")),
    ),
    BadInput(
        "a variable too many",
        "slice",
        versioncube.SliceValidationError,
        "has variable(s) 'psl' that the cube does not have",
        lambda scene: _appending(scene, good().assign(psl=good().tas)),
    ),
    BadInput(
        "dimensions in another order",
        "slice",
        versioncube.SliceValidationError,
        "has dimensions (time, lon, lat), the cube has (time, lat, lon)",
        lambda scene: _appending(scene, good().transpose("time", "lon", "lat")),
    ),
    BadInput(
        "a label the cube already has",
        "slice",
        versioncube.SliceValidationError,
        "time label 2024-01-02 is not after the cube's last label 2024-01-02",
        lambda scene: _appending(scene, good("2024-01-02").assign_attrs(v=2)),
    ),
    BadInput(
        "labels out of order",
        "slice",
        versioncube.SliceValidationError,
        "time labels are not strictly increasing",
        lambda scene: _appending(scene, sample_slice(["2024-01-05", "2024-01-04"], shape=SHAPE)),
    ),
    BadInput(
        "a label finer than the cube's time units",
        "slice",
        versioncube.SliceValidationError,
        "cannot store exactly",
        lambda scene: _appending(scene, good("2024-01-03T00:00:00.5")),
    ),
    BadInput(
        "numbers where the cube has dates",
        "slice",
        versioncube.SliceValidationError,
        "variable 'time' has dtype int64, the cube has datetime64[ns]",
        lambda scene: _appending(scene, good().assign_coords(time=[3])),
    ),
    BadInput(
        "a Zarr slice compressed with a codec no installed package implements",
        "slice",
        versioncube.SliceOpenError,
        "jpeg2k",
        _unknown_codec,
    ),
    BadInput(
        "a slice opened with decode_cf=False, packed unlike the cube",
        "slice",
        versioncube.SliceValidationError,
        "variable 'tas'",
        _raw_packed,
    ),
    BadInput(
        "a NetCDF3 file referenced (--virtual) into a cube of groups (a tree)",
        "slice",
        versioncube.SliceValidationError,
        "is a NetCDF3 file, which has no groups",
        _netcdf3_into_a_tree,
    ),
    BadInput(
        "a tree written by label whose node without time differs from the cube's",
        "slice",
        versioncube.SliceValidationError,
        "group /grid: 'area' differs from the cube's",
        _changed_node_of_a_tree,
    ),
]

CONFIGURATION_CASES = [
    BadInput(
        "an unknown configuration key",
        "configuration",
        versioncube.ConfigError,
        "unknown configuration key 'append_dimension' (did you mean 'append_dim'?)",
        lambda scene: _appending(scene, good(), settings={"append_dimension": "time"}),
    ),
    BadInput(
        "a misspelt nested key (variables.tas.encoding.chunk)",
        "configuration",
        versioncube.ConfigError,
        "unknown configuration key 'variables.tas.encoding.chunk' (did you mean 'chunks'?)",
        lambda scene: _appending(scene, good(), settings=_encoding(chunk=[1, 6, 12])),
    ),
    BadInput(
        "a configuration value of the wrong type",
        "configuration",
        versioncube.ConfigError,
        "configuration key 'dry_run' must be true or false",
        lambda scene: _appending(scene, good(), settings={"dry_run": "no"}),
    ),
    BadInput(
        "zarr_version 2",
        "configuration",
        versioncube.ConfigError,
        "configuration key 'zarr_version' must be 3",
        lambda scene: _appending(scene, good(), settings={"zarr_version": 2}),
    ),
    BadInput(
        "another append dimension than the cube's",
        "configuration",
        versioncube.ConfigError,
        "was created with append_dim 'time'",
        lambda scene: _appending(scene, good(), settings={"append_dim": "lat"}),
    ),
    BadInput(
        "an outline setting the cube was not created with (append_step)",
        "configuration",
        versioncube.ConfigError,
        "append_step is '1D', but the cube at",
        lambda scene: _appending(scene, good(), settings={"append_step": "1D"}),
    ),
    BadInput(
        "labels that do not follow the cube's append_step",
        "configuration",
        versioncube.SliceValidationError,
        "follows the cube's last label 2024-01-02 by 3D, but append_step is '1D'",
        lambda scene: _appending(scene, good("2024-01-05")),
        cube_settings={"append_step": "1D"},
    ),
    BadInput(
        "chunks with the wrong number of entries (first slice)",
        "configuration",
        versioncube.ConfigError,
        "has 2 entries, but the variable has 3 dimensions",
        _first_slice(_encoding(chunks=[1, 6])),
    ),
    BadInput(
        "shards that are not a multiple of the chunks (first slice)",
        "configuration",
        versioncube.ConfigError,
        "must be a multiple of the chunks [1, 4, 12]",
        _first_slice(_encoding(chunks=[1, 4, 12], shards=[1, 6, 12])),
    ),
    BadInput(
        "fill_value NaN for an integer dtype (first slice)",
        "configuration",
        versioncube.ConfigError,
        'is "NaN", which the storage dtype int16 cannot store',
        _first_slice(_encoding(dtype="int16", fill_value="NaN")),
    ),
    BadInput(
        "a codec that does not exist (first slice)",
        "configuration",
        versioncube.ConfigError,
        "invalid codec {'name': 'no-such-codec'}",
        _first_slice(_encoding(compressors=[{"name": "no-such-codec"}])),
    ),
    BadInput(
        "fixed_dims naming the append dimension (first slice)",
        "configuration",
        versioncube.ConfigError,
        "fixed_dims names the append dimension 'time'",
        _first_slice({"fixed_dims": {"time": 1}}),
    ),
    BadInput(
        "an attribute expression that fails on the first slice",
        "configuration",
        versioncube.ConfigError,
        "attrs.end: cannot evaluate {{ ds.no_such_field }}",
        _first_slice({"attrs": {"end": "{{ ds.no_such_field }}"}, "permit_eval": True}),
    ),
    BadInput(
        "an unset ${VAR} in a configuration file",
        "configuration",
        versioncube.ConfigError,
        f"environment variable {UNSET_VARIABLE!r} is not set",
        _unset_variable,
    ),
    BadInput(
        "a configuration file that is not valid YAML",
        "configuration",
        versioncube.ConfigError,
        "is not valid YAML: ",
        lambda scene: _appending(scene, good(), config=_config_file(scene, "attrs: [open\n")),
    ),
    BadInput(
        "a configuration file that is a list, not a mapping",
        "configuration",
        versioncube.ConfigError,
        "must hold a mapping of settings, found list",
        lambda scene: _appending(scene, good(), config=_config_file(scene, "- target_dir\n")),
    ),
    BadInput(
        "a configuration file that does not exist",
        "configuration",
        versioncube.ConfigError,
        "cannot read configuration file",
        lambda scene: _appending(scene, good(), config=scene.folder / "missing.yaml"),
    ),
    BadInput(
        "virtual_group (one group of each file) for a cube of references that is a tree",
        "configuration",
        versioncube.ConfigError,
        "is a tree, which references every group of a file; remove virtual_group",
        _virtual_group_of_a_tree,
    ),
]

TARGET_CASES = [
    BadInput(
        "the data folder as target",
        "target",
        versioncube.TargetError,
        "is a folder with other files (2024-01-03.nc), not a cube",
        _data_folder,
        cube="local",
    ),
    BadInput(
        "a slice file as target",
        "target",
        versioncube.TargetError,
        "is a file, not a folder for a cube",
        _slice_as_target,
        cube="local",
    ),
    BadInput(
        "a folder that cannot be created (/proc/cube)",
        "target",
        versioncube.TargetError,
        "cannot create the cube folder /proc/cube",
        lambda scene: _appending(scene, good(), target="/proc/cube"),
        cube="local",
    ),
    BadInput(
        "an S3 bucket that does not exist",
        "target",
        versioncube.TargetError,
        "cannot create the cube at s3://no-such-bucket/cube",
        _missing_bucket,
        cube="local",
        needs_s3=True,
    ),
    BadInput(
        "an object-store target without a prefix",
        "target",
        versioncube.TargetError,
        "needs a bucket and a prefix",
        lambda scene: _appending(scene, good(), target="s3://cubes"),
        cube="local",
    ),
    BadInput(
        "an unknown scheme",
        "target",
        versioncube.TargetError,
        "unknown scheme 'ftp'",
        lambda scene: _appending(scene, good(), target="ftp://example.org/cube"),
        cube="local",
    ),
    BadInput(
        "an unknown storage option",
        "target",
        versioncube.TargetError,
        "unknown storage option 'endpoint' for s3 targets",
        lambda scene: _appending(
            scene,
            good(),
            target="s3://cubes/cube",
            settings={"target_storage_options": {"endpoint": "http://127.0.0.1:9"}},
        ),
        cube="local",
    ),
    BadInput(
        "an Azure target without a storage account",
        "target",
        versioncube.TargetError,
        "Azure needs the storage account name",
        lambda scene: _appending(scene, good(), target="az://cubes/cube"),
        cube="local",
    ),
    BadInput(
        "parallel appends without a dask cluster",
        "configuration",
        versioncube.ConfigError,
        "parallel appends need a dask cluster",
        lambda scene: _appending(scene, good(), settings={"parallel": True}),
        cube="local",
    ),
    BadInput(
        "a memory_limit that is not a size",
        "configuration",
        versioncube.ConfigError,
        "memory_limit 'lots' is not a size",
        lambda scene: _appending(scene, good(), settings={"memory_limit": "lots"}),
        cube="local",
    ),
    BadInput(
        "a dask scheduler address where no scheduler answers",
        "target",
        versioncube.ClusterError,
        "no dask scheduler answers at tcp://127.0.0.1:9",
        lambda scene: _appending(scene, good(), settings={"dask_scheduler": "tcp://127.0.0.1:9"}),
        cube="local",
        slow=True,
        test_dask_config={"versioncube.scheduler-timeout": "1s"},  # not 10 s, twice
    ),
    BadInput(
        "memory:// without a name",
        "target",
        versioncube.TargetError,
        "give the in-memory repository a name",
        lambda scene: _appending(scene, good(), target="memory://"),
        cube="local",
    ),
    BadInput(
        "an export to a folder that holds something",
        "target",
        versioncube.DestinationExistsError,
        "is not empty",
        _export_over_files,
        cube="local",
    ),
]

VERSION_CASES = [
    BadInput(
        "a snapshot id that gc removed",
        "version",
        versioncube.RefNotFoundError,
        "was removed by gc (expired) and cannot be read; what remains:",
        lambda scene: _asking(
            scene, lambda cube: cube.info(scene.expired[0]), "show", "--at", scene.expired[0]
        ),
        cube="expired",
    ),
    BadInput(
        "a short snapshot id that gc removed",
        "version",
        versioncube.RefNotFoundError,
        "was removed by gc (expired)",
        lambda scene: _asking(
            scene,
            lambda cube: cube.rollback(scene.expired[1][:10]),
            "rollback",
            "--to",
            scene.expired[1][:10],
        ),
        cube="expired",
    ),
    BadInput(
        "a date between commits that gc removed",
        "version",
        versioncube.RefNotFoundError,
        "as of 20",
        lambda scene: _asking(
            scene,
            lambda cube: cube.diff(_isoformat(scene.between)),
            "diff",
            _isoformat(scene.between),
        ),
        cube="expired",
    ),
    BadInput(
        "a date before the cube's first commit",
        "version",
        versioncube.RefNotFoundError,
        "the cube had no data yet at",
        _before_the_first_commit,
        cube="local",
    ),
    BadInput(
        "a date before the repository existed",
        "version",
        versioncube.RefNotFoundError,
        "(the repository is younger)",
        lambda scene: _asking(
            scene, lambda cube: cube.log(version="2020-01-01"), "log", "--at", "2020-01-01"
        ),
        cube="local",
    ),
    BadInput(
        "an ambiguous snapshot id prefix",
        "version",
        versioncube.RefNotFoundError,
        "is ambiguous",
        _ambiguous_prefix,
        cube="local",
        slow=True,
    ),
    BadInput(
        "a misspelt tag",
        "version",
        versioncube.RefNotFoundError,
        "unknown version 'v1.1'",
        _misspelt_tag,
        cube="local",
    ),
    BadInput(
        "a branch that does not exist",
        "version",
        versioncube.CubeNotFoundError,
        "no branch 'staging'",
        _missing_branch,
        cube="local",
    ),
    BadInput(
        "more commits back than the history has (main~99)",
        "version",
        versioncube.RefNotFoundError,
        "branch 'main' has fewer than 99 earlier commits",
        lambda scene: _asking(
            scene, lambda cube: cube.rollback("main~99"), "rollback", "--to", "main~99"
        ),
        cube="local",
    ),
    BadInput(
        "deleting main",
        "version",
        versioncube.VersionError,
        "the main branch cannot be deleted",
        lambda scene: Attempt(
            lambda: scene.cube().delete_branch("main"),
            ("branch", "-t", scene.target, "delete", "main"),
        ),
        cube="local",
    ),
    BadInput(
        "a branch name that exists",
        "version",
        versioncube.VersionError,
        "branch 'staging' already exists",
        _existing_branch,
        cube="local",
    ),
    BadInput(
        "a tag name that exists",
        "version",
        versioncube.VersionError,
        "tag 'v1' already exists",
        _existing_tag,
        cube="local",
    ),
    BadInput(
        "a tag name used before and deleted",
        "version",
        versioncube.VersionError,
        "was used before and deleted",
        _deleted_tag,
        cube="local",
    ),
    BadInput(
        "promoting a branch into one that moved on",
        "version",
        versioncube.VersionError,
        "cannot promote 'staging' into 'main'",
        _not_a_fast_forward,
        cube="local",
    ),
    BadInput(
        "gc below the safe minimum, without --force",
        "version",
        versioncube.VersionError,
        "shorter than the safe minimum",
        lambda scene: _asking(scene, lambda cube: cube.gc("1h"), "gc", "--older-than", "1h"),
        cube="local",
    ),
    BadInput(
        "a gc duration that is not understood",
        "version",
        versioncube.ConfigError,
        "duration '30 days' is not understood",
        lambda scene: _asking(
            scene, lambda cube: cube.gc("30 days"), "gc", "--older-than", "30 days"
        ),
        cube="local",
    ),
]

#: Writes by label and deletes (docs/updates.md).
UPDATE_CASES = [
    BadInput(
        "write --mode replace with labels the cube lacks",
        "slice",
        versioncube.SliceValidationError,
        "not in the cube: --mode replace only rewrites labels the cube has",
        lambda scene: _writing(scene, good(), "replace"),
    ),
    BadInput(
        "write --mode insert with labels the cube has",
        "slice",
        versioncube.SliceValidationError,
        "in the cube already: --mode insert only adds new labels",
        # other values than the cube's first day (the same ones would be a no-op)
        lambda scene: _writing(scene, good(DAYS[0]) + 1, "insert"),
    ),
    BadInput(
        "write --mode insert leaving a gap under a fixed append_step",
        "slice",
        versioncube.SliceValidationError,
        "append_step is '1D'",
        lambda scene: _writing(scene, good("2024-01-05"), "insert"),
        cube_settings={"append_step": "1D"},
    ),
    BadInput(
        "a delete that would remove every label",
        "version",
        versioncube.LabelRangeError,
        "would remove every label",
        lambda scene: _deleting(scene, f"{DAYS[0]}..{DAYS[-1]}"),
    ),
    BadInput(
        "a delete range that is not FIRST..LAST",
        "version",
        versioncube.LabelRangeError,
        "is not a label range: give FIRST..LAST",
        lambda scene: _deleting(scene, f"{DAYS[0]}.."),
    ),
    BadInput(
        "a delete label of another kind",
        "version",
        versioncube.LabelRangeError,
        "is not a label of the cube's kind",
        lambda scene: _deleting(scene, "yesterday"),
    ),
]


def _adding(scene: Scene, name: str, data: xr.Dataset, *options: str, **keywords: Any) -> Attempt:
    """add-variable ``name`` from a file holding ``data`` (the same file in Python and on the
    command line, so that both name it alike)."""
    path = scene.folder / f"{name}.nc"
    data.to_netcdf(path)
    command = ("add-variable", "-t", scene.target, *options, name, str(path))
    return Attempt(lambda: scene.cube().add_variable(name, [path], **keywords), command)


def _variable(name: str, days: tuple[str, ...] = DAYS[1:], dtype: str = "float32") -> xr.Dataset:
    """A variable over ``days`` of the catalogue's grid."""
    values = good(days[0]) if len(days) == 1 else xr.concat([good(day) for day in days], "time")
    variable: xr.DataArray = values.tas.astype(dtype).rename(name)
    return variable.to_dataset()


SCHEMA_CASES = [
    BadInput(
        "adding a variable the cube has",
        "schema",
        versioncube.SchemaError,
        "'tas' is already a variable of the cube; drop it first",
        lambda scene: _adding(scene, "tas", _variable("tas")),
    ),
    BadInput(
        "adding a variable at labels the cube does not hold",
        "schema",
        versioncube.SliceValidationError,
        "that the cube does not hold (it holds 2024-01-01 .. 2024-01-02)",
        lambda scene: _adding(scene, "sst", _variable("sst", ("2024-01-02", "2024-01-05"))),
    ),
    BadInput(
        "adding an integer variable without a fill value",
        "schema",
        versioncube.SchemaError,
        "is stored as int16, which has no NaN: give a fill value",
        lambda scene: _adding(scene, "warm", _variable("warm", dtype="int16")),
    ),
    BadInput(
        "adding a variable whose data holds its fill value",
        "schema",
        versioncube.SliceValidationError,
        "holds its fill value 0.0 in 72 cells",
        lambda scene: _adding(
            scene, "zero", _variable("zero") * 0, "--fill-value", "0", fill_value=0.0
        ),
    ),
    BadInput(
        "dropping the append coordinate",
        "schema",
        versioncube.SchemaError,
        "'time' is the append coordinate",
        lambda scene: _asking(
            scene, lambda cube: cube.drop_variable("time"), "drop-variable", "time"
        ),
    ),
    BadInput(
        "dropping a coordinate other variables need",
        "schema",
        versioncube.SchemaError,
        "'lat' is a coordinate that pr, tas need(s)",
        lambda scene: _asking(
            scene, lambda cube: cube.drop_variable("lat"), "drop-variable", "lat"
        ),
    ),
    BadInput(
        "dropping a variable from a group the cube does not have",
        "schema",
        versioncube.SchemaError,
        "has no group /ocean (its groups: /): give the path of an existing node",
        lambda scene: _asking(
            scene,
            lambda cube: cube.drop_variable("tas", group="/ocean"),
            "drop-variable",
            "tas",
            "--group",
            "/ocean",
        ),
    ),
]

CASES = [
    *SLICE_CASES,
    *CONFIGURATION_CASES,
    *TARGET_CASES,
    *VERSION_CASES,
    *SCHEMA_CASES,
    *UPDATE_CASES,
]


def _isoformat(moment: dt.datetime | None) -> str:
    if moment is None:
        raise RuntimeError("this case needs the expired history (cube='expired')")
    return moment.isoformat()


# -- scenes -------------------------------------------------------------------------------------


class Scenes:
    """Makes the scene of each case; the cubes on local disk are copies of templates built once
    (the expired history waits for its commits to age before gc)."""

    def __init__(self, root: Path, s3_options: Mapping[str, Any] | None = None):
        self.root = root
        self.s3_options = s3_options
        self._templates: dict[CubeKind, Scene] = {}

    def make(self, case: BadInput, folder: Path) -> Scene:
        """A fresh scene for ``case`` in ``folder`` (the local cube is ``folder/cube``)."""
        folder.mkdir(parents=True, exist_ok=True)
        if case.needs_s3 and self.s3_options is None:
            raise RuntimeError(f"{case.what}: needs a running S3 server (s3_options)")
        if case.cube == "memory":
            target = f"memory://{uuid.uuid4().hex}"
            _grow(target, DAYS, case.cube_settings)
            return Scene(folder, target, s3_options=self.s3_options)
        if case.cube_settings:
            raise ValueError(f"{case.what}: cube_settings need a memory cube")
        template = self._template(case.cube)
        shutil.copytree(template.target, folder / "cube")
        return dataclasses.replace(
            template, folder=folder, target=str(folder / "cube"), s3_options=self.s3_options
        )

    def _template(self, kind: CubeKind) -> Scene:
        if kind not in self._templates:
            folder = self.root / kind
            folder.mkdir(parents=True)
            make = _expired_history if kind == "expired" else _two_days_on_disk
            self._templates[kind] = make(folder)
        return self._templates[kind]


def _grow(target: str, days: tuple[str, ...], settings: Mapping[str, Any]) -> None:
    versioncube.append([good(day) for day in days], target_dir=target, **settings)


def _two_days_on_disk(folder: Path) -> Scene:
    target = str(folder / "cube")
    _grow(target, DAYS, {})
    return Scene(folder, target)


def _expired_history(folder: Path) -> Scene:
    """Three days, one commit each; gc then removes the first two commits (the data stays,
    in the tip's snapshot)."""
    days = (*DAYS, NEXT_DAY)
    target = str(folder / "cube")
    _grow(target, days, {})
    log = versioncube.open_cube(target).log()
    expired = tuple(entry.snapshot_id for entry in log[1:])
    between = log[1].written_at  # the second commit's time, between the first and the tip
    time.sleep(2 * EXPIRY_AGE.total_seconds())
    versioncube.open_cube(target).gc(EXPIRY_AGE, force=True)
    return Scene(folder, target, days=days, expired=expired, between=between)


# -- what the tests look at ---------------------------------------------------------------------


def target_state(target: str) -> object:
    """What a refusal must leave as it was at a target: every branch's and tag's snapshot id,
    and on local disk every file's name, size and modification time (the file itself, for a
    file). None where there is nothing (no such folder, not a valid target); object stores
    are not inspected (None too)."""
    try:
        parsed = parse_target(target)
    except TargetError:
        return None  # nothing can have been written there
    if parsed.kind == "local":
        path = Path(parsed.location)
        if path.is_file():
            return {"file": (path.stat().st_size, path.stat().st_mtime_ns)}
        if not path.is_dir():
            return None
        return {"files": files(path), "refs": _refs(parsed.storage())}
    if parsed.kind == "memory":
        return {"refs": _refs(parsed.storage())}
    return None


def _refs(storage: icechunk.Storage) -> dict[str, str] | None:
    if not icechunk.Repository.exists(storage):
        return None
    repo = icechunk.Repository.open(storage)
    refs = {f"branch {name}": repo.lookup_branch(name) for name in repo.list_branches()}
    return refs | {f"tag {name}": repo.lookup_tag(name) for name in repo.list_tags()}


def python_error(case: BadInput, attempt: Attempt) -> versioncube.VersionCubeError:
    """The error the case's Python call raises (exactly the case's class, else AssertionError)."""
    try:
        attempt.call()
    except versioncube.VersionCubeError as error:
        if type(error) is not case.error:
            raise AssertionError(
                f"{case.what}: {type(error).__name__} raised, not {case.error.__name__}: {error}"
            ) from error
        return error
    raise AssertionError(f"{case.what}: no {case.error.__name__} raised")


# -- what the page shows ------------------------------------------------------------------------

_TOKEN = re.compile(r"\b[0-9A-Z]{4,20}\b")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d)?")


#: What the tests saw: the message of each case they tried (by ``case.what``) as the page shows
#: it, so that the page's test (tests/test_docs.py) need not try those cases again in the same
#: process (``bad_input_reference(known=SEEN)`` in docs/generate_reference.py).
SEEN: dict[str, str] = {}


def shown_message(message: str, scene: Scene) -> str:
    """The message as docs/bad-input.md shows it: the same in every run (folders, cube names,
    snapshot ids, commit times and the S3 server's address replaced by placeholders)."""
    ids = set(scene.expired) | set(_snapshot_ids(scene.target))
    message = message.replace(str(scene.folder), "<folder>")
    if scene.target.startswith("memory://"):
        message = message.replace(scene.target, "memory://cube")
    message = re.sub(r"\b(xxh3|sha256):[0-9a-f]{12}\b", r"\1:...", message)
    message = _TOKEN.sub(
        lambda token: "<id>" if any(i.startswith(token[0]) for i in ids) else token[0], message
    )
    message = _MOMENT.sub(lambda moment: "<time>" if _recent(moment[0]) else moment[0], message)
    if scene.s3_options and "endpoint_url" in scene.s3_options:
        message = message.replace(str(scene.s3_options["endpoint_url"]), "<s3 server>")
    return message


def _snapshot_ids(target: str) -> list[str]:
    storage = parse_target(target).storage()
    if not icechunk.Repository.exists(storage):
        return []
    return list(known_snapshot_ids(icechunk.Repository.open(storage)))


def _recent(text: str) -> bool:
    """Whether a date-time is from this run (a commit's time), not a slice's label."""
    moment = pd.Timestamp(text)
    now = pd.Timestamp.now(tz="UTC") if moment.tzinfo else pd.Timestamp.now()
    return abs(now - moment) < pd.Timedelta(days=1)
