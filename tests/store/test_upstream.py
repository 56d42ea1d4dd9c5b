"""The private upstream internals in versioncube/store/upstream.py still do what it relies on.

Each test names the library, its installed version and what changed when it fails, so an
upgrade that moves or changes one of them is found here and not in a corrupted cube.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import icechunk
import numpy as np
import pytest
import xarray as xr
import zarr
import zarr.api.asynchronous

import versioncube
from versioncube.store.upstream import (
    OpenNodes,
    cf_time_round_trip,
    encode_for_zarr,
    netcdf4_backend,
    run_on_zarr_loop,
)

PACKAGE = Path(versioncube.__file__).parent
UPSTREAM = PACKAGE / "store" / "upstream.py"

#: modules that are internals of their library as a whole
PRIVATE_MODULES = ("zarr.core", "xarray.core", "xarray.backends")

MOVED_ENCODER = "xarray.backends.zarr.encode_zarr_variable moved or changed its signature"
MOVED_SYNC = "zarr.core.sync.sync moved or changed its signature"


def changed(library: str, what: str) -> str:
    """The message of a failed check: which library, which version, what changed."""
    version = importlib.metadata.version(library)
    return (
        f"{library} {version}: {what}. versioncube/store/upstream.py relies on it: "
        f"adapt it there, or bound {library}'s version in pyproject.toml"
    )


@contextlib.contextmanager
def relied_on(library: str, what: str) -> Iterator[None]:
    """Turn an upstream call that now raises (moved, renamed, new signature) into a loud fail."""
    try:
        yield
    except Exception as error:
        pytest.fail(f"{changed(library, what)}: {type(error).__name__}: {error}")


def encoded(data: np.ndarray, encoding: dict, attrs: dict | None = None) -> xr.Variable:
    """``data`` as encode_for_zarr stores it, given the cube's stored ``encoding``."""
    variable = xr.Variable(("time",), data, attrs or {})
    variable.encoding = dict(encoding)
    with relied_on("xarray", MOVED_ENCODER):
        return encode_for_zarr(variable, "name")


def test_datetimes_become_exact_integer_offsets_with_units_and_calendar():
    """Appended time labels must be stored as the cube's own int64 offsets, to the second."""
    times = np.array(
        ["2024-01-01T00:00:00", "2024-01-01T06:00:00", "2024-01-03T00:00:15"],
        dtype="datetime64[ns]",
    )
    result = encoded(times, {"units": "seconds since 2024-01-01", "dtype": "int64"})

    what = "encode_zarr_variable encodes datetimes differently"
    assert result.dtype == np.dtype("int64"), changed("xarray", f"{what}: dtype {result.dtype}")
    assert result.values.tolist() == [0, 21_600, 172_815], changed("xarray", what)
    assert result.attrs == {
        "units": "seconds since 2024-01-01",
        "calendar": "proleptic_gregorian",
    }, changed("xarray", f"{what}: attrs {result.attrs}")


def test_floats_are_packed_with_scale_offset_and_fill_value():
    """Packed variables must get the stored integers, with NaN as the cube's _FillValue."""
    values = np.array([280.0, 281.2, np.nan, 270.0], dtype="float32")
    packing = {"dtype": "int16", "scale_factor": 0.1, "add_offset": 280.0, "_FillValue": -32767}
    result = encoded(values, packing, attrs={"units": "K"})

    what = "encode_zarr_variable packs floats differently"
    assert result.dtype == np.dtype("int16"), changed("xarray", f"{what}: dtype {result.dtype}")
    assert result.values.tolist() == [0, 12, -32767, -100], changed("xarray", what)
    assert result.attrs == {
        "units": "K",
        "scale_factor": 0.1,
        "add_offset": 280.0,
        "_FillValue": -32767,
    }, changed("xarray", f"{what}: attrs {result.attrs}")


def test_encoding_matches_what_to_zarr_stores():
    """In-place rows must be stored as to_zarr stores them, bools and strings included."""
    dataset = xr.Dataset(
        {
            "time": ("time", np.array(["2024-01-01", "2024-01-02T12"], dtype="datetime64[ns]")),
            "tas": ("time", np.array([281.2, np.nan], dtype="float32"), {"units": "K"}),
            "flag": ("time", np.array([True, False])),
            "label": ("time", np.array(["a", "bcd"])),
            "text": ("time", np.array(["a", "bcd"], dtype=np.dtypes.StringDType())),
        }
    )
    dataset.time.encoding = {"units": "hours since 2024-01-01", "dtype": "int32"}
    dataset.tas.encoding = {
        "dtype": "int16",
        "scale_factor": 0.1,
        "add_offset": 280.0,
        "_FillValue": -1,
    }
    store = zarr.storage.MemoryStore()
    dataset.to_zarr(store, zarr_format=3, consolidated=False)
    group = zarr.open_group(store, mode="r", zarr_format=3)

    for name, variable in dataset.variables.items():
        stored = group[str(name)]
        to_encode = xr.Variable(variable.dims, variable.data, variable.attrs)
        to_encode.encoding = dict(variable.encoding)
        with relied_on("xarray", MOVED_ENCODER):
            result = encode_for_zarr(to_encode, str(name))
        what = f"encode_zarr_variable encodes {name!r} unlike to_zarr stores it"
        assert result.dtype == stored.dtype, changed("xarray", f"{what} ({result.dtype})")
        assert result.values.tolist() == stored[:].tolist(), changed("xarray", what)
        for key, value in result.attrs.items():
            if key != "_FillValue":  # Zarr format 3 keeps it as the array's fill value
                assert stored.attrs.get(key) == value, changed("xarray", f"{what} (attr {key})")


MOVED_CF_ENCODER = "xarray.conventions.encode_cf_variable moved or encodes times otherwise"


def test_time_round_trips_tell_exact_from_inexact_and_overflowing_encodings():
    """A configured time encoding is checked by encoding and decoding with xarray's own coder:
    exact times come back, xarray's warning about other units and its overflow are errors."""
    import cftime

    times = np.array(["2024-01-01", "2024-01-01T06"], dtype="datetime64[ns]")
    with relied_on("xarray", MOVED_CF_ENCODER):
        back, units = cf_time_round_trip(times, "hours since 1800-01-01", "standard", "int32")
        noleap = np.array([cftime.datetime(2024, 2, 28, calendar="noleap")], dtype=object)
        back_noleap, _ = cf_time_round_trip(noleap, "days since 2000-01-01", "noleap", "float64")
    assert back.tolist() == times.tolist(), changed("xarray", MOVED_CF_ENCODER)
    assert units == "hours since 1800-01-01", changed("xarray", f"{MOVED_CF_ENCODER}: {units}")
    assert back_noleap[0] == noleap[0], changed("xarray", MOVED_CF_ENCODER)

    noon = np.array(["2024-01-01T12"], dtype="datetime64[ns]")
    with pytest.raises(ValueError):  # xarray would switch to "hours since ...", with a warning
        cf_time_round_trip(noon, "days since 2000-01-01", "standard", "int64")
    with pytest.raises((ValueError, OverflowError)):
        cf_time_round_trip(noon, "seconds since 1800-01-01", "standard", "int32")


async def _grow_and_read(store: icechunk.IcechunkStore) -> tuple[list, asyncio.AbstractEventLoop]:
    """Create, grow and read back a Zarr array with Zarr's async API, as the in-place path does."""
    group = await zarr.api.asynchronous.open_group(store, mode="w", zarr_format=3)
    array = await group.create_array("rows", shape=(0, 2), chunks=(1, 2), dtype="int32")
    await array.append(np.array([[1, 2], [3, 4]], dtype="int32"), axis=0)
    values = await array.getitem(slice(None))
    return values.tolist(), asyncio.get_running_loop()


def test_the_netcdf4_backend_is_the_one_xarray_guesses_for_netcdf_files(tmp_path):
    """Naming the backend class opens NetCDF files as xarray's guess would."""
    path = tmp_path / "file.nc"
    xr.Dataset({"v": ("x", np.arange(3.0))}).to_netcdf(path, engine="netcdf4")
    guessed = xr.backends.plugins.guess_engine(str(path))
    backend = netcdf4_backend()
    assert guessed == "netcdf4", changed("xarray", f"it now guesses {guessed!r} for NetCDF4")
    assert isinstance(xr.backends.plugins.list_engines()["netcdf4"], backend), changed(
        "xarray", "its netCDF4 backend class moved"
    )


def test_run_on_zarr_loop_runs_zarr_async_code_on_an_icechunk_store():
    """The in-place append grows and writes arrays in one coroutine run on Zarr's loop."""
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    session = repo.writable_session("main")

    with relied_on("zarr", MOVED_SYNC):
        values, loop = run_on_zarr_loop(_grow_and_read(session.store))
        _, loop_again = run_on_zarr_loop(_grow_and_read(session.store))
    session.commit("rows")

    assert values == [[1, 2], [3, 4]], changed("zarr", "zarr.core.sync.sync returns otherwise")
    assert loop is loop_again, changed("zarr", "zarr.core.sync.sync uses a new loop per call")
    assert loop.is_running(), changed("zarr", "zarr.core.sync.sync no longer keeps its loop")
    read_back = zarr.open_group(repo.readonly_session("main").store, mode="r")["rows"][:]
    assert read_back.tolist() == [[1, 2], [3, 4]]


def test_nodes_know_their_session_and_open_in_the_next_as_its_commit_stores_them():
    """Icechunk makes a new store object on each ``Session.store``; nodes opened in one
    session tell it from another's. The nodes a commit stores open in a session on that
    commit with the metadata a fresh read gives, and their own attributes."""
    repo = icechunk.Repository.create(icechunk.in_memory_storage())
    session = repo.writable_session("main")
    group = zarr.create_group(session.store, attributes={"title": "cube"})
    group.create_array("rows", shape=(2,), chunks=(1,), dtype="i4", attributes={"units": "m"})

    async def opened() -> OpenNodes:
        root = await zarr.api.asynchronous.open_group(session.store, mode="r+")
        return OpenNodes(session.store, root, {"rows": await root.getitem("rows")})

    nodes = run_on_zarr_loop(opened())
    assert nodes.in_session_of(session.store), changed(
        "icechunk", "Session.store compares otherwise"
    )
    assert not nodes.in_session_of(repo.writable_session("main").store)
    committed = nodes.committed()
    session.commit("rows")

    following = repo.writable_session("main")
    opened = committed.opened_in(following.store)
    fresh = zarr.open_group(following.store, mode="r")
    assert opened.in_session_of(following.store)
    assert opened.group.metadata == fresh.metadata
    assert opened.arrays["rows"].metadata == fresh["rows"].metadata
    opened.group.metadata.attributes["title"] = "changed by a write that failed"
    opened.arrays["rows"].metadata.attributes["units"] = "km"
    again = committed.opened_in(following.store)
    assert again.group.attrs["title"] == "cube" and again.arrays["rows"].attrs["units"] == "m"


def test_run_on_zarr_loop_raises_the_coroutines_error():
    """A failed append (a missing array, a conflict) must reach the caller as its own error."""

    async def missing_array() -> None:
        store = zarr.storage.MemoryStore()
        group = await zarr.api.asynchronous.open_group(store, mode="w", zarr_format=3)
        await group.getitem("absent")

    with relied_on("zarr", MOVED_SYNC), pytest.raises(KeyError):
        run_on_zarr_loop(missing_array())


# --- isolation: no other module of versioncube imports a private name of another library ---


def _third_party(module: str) -> bool:
    top = module.partition(".")[0]
    return top != "versioncube" and top not in sys.stdlib_module_names


def _is_private(dotted: str) -> bool:
    """Whether ``dotted`` (module, or module.attribute...) is internal to its library."""
    if any(dotted == module or dotted.startswith(f"{module}.") for module in PRIVATE_MODULES):
        return True
    return any(part.startswith("_") and not part.endswith("__") for part in dotted.split(".")[1:])


def private_uses(path: Path) -> list[str]:
    """Private names of other libraries that ``path`` imports or reaches through attributes."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}  # local name -> third-party module it is bound to
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                if _third_party(name.name):
                    bound = name.asname or name.name.partition(".")[0]
                    aliases[bound] = name.name if name.asname else bound
                    if _is_private(name.name):
                        found.append(f"{path.name}:{node.lineno} import {name.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not _third_party(node.module):
                continue
            for name in node.names:
                dotted = f"{node.module}.{name.name}"
                aliases[name.asname or name.name] = dotted
                if _is_private(dotted):
                    found.append(f"{path.name}:{node.lineno} from {node.module} import {name.name}")
    inner_links: set[int] = set()  # the attributes inside a chain already looked at
    for node in ast.walk(tree):  # outer attributes come first
        if isinstance(node, ast.Attribute) and id(node) not in inner_links:
            parts: list[str] = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                inner_links.add(id(inner))
                parts.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                dotted = ".".join([aliases[inner.id], *parts])
                if _is_private(dotted):
                    found.append(f"{path.name}:{node.lineno} {dotted}")
    return sorted(set(found))


def test_the_scan_finds_the_private_names_upstream_uses():
    """The isolation check below can fail: it sees the internals upstream.py wraps."""
    found = " ".join(private_uses(UPSTREAM))
    assert "zarr.core.sync import sync" in found
    assert "xarray.backends.zarr import encode_zarr_variable" in found


def test_the_scan_finds_private_attributes_and_underscored_names(tmp_path):
    """Reaching an internal through an attribute chain or an underscored name counts too."""
    source = tmp_path / "sample.py"
    source.write_text(
        "import zarr\nimport xarray as xr\nfrom icechunk.xarray import _private\n"
        "zarr.core.sync.sync(None)\nxr.backends.zarr.encode_zarr_variable\nxr.Dataset\n"
    )
    assert private_uses(source) == [
        "sample.py:3 from icechunk.xarray import _private",
        "sample.py:4 zarr.core.sync.sync",
        "sample.py:5 xarray.backends.zarr.encode_zarr_variable",
    ]


def test_only_upstream_uses_private_names_of_other_libraries():
    """Private upstream internals stay in one module, where test_upstream checks each one."""
    found = [
        use
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != UPSTREAM
        for use in private_uses(path)
    ]
    assert found == [], "move these into versioncube/store/upstream.py and test them here"
