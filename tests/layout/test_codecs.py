"""Compressors and filters: zappend's numcodecs-style settings become Zarr v3 codecs."""

from __future__ import annotations

import pytest
import xarray as xr
import zarr

import versioncube
from versioncube import open_cube
from versioncube.errors import ConfigError
from versioncube.layout.codecs import codec_encoding


def _names(codecs) -> list[dict]:
    return [codec.to_dict() for codec in codecs or ()]


@pytest.mark.parametrize(
    ("settings", "compressors", "filters"),
    [
        (
            {"compressor": {"id": "blosc", "cname": "zstd", "clevel": 3, "shuffle": 2}},
            [{"name": "blosc", "configuration": {"typesize": 4, "cname": "zstd", "clevel": 3,
                                                  "shuffle": "bitshuffle", "blocksize": 0}}],
            [],
        ),
        (
            {"compressor": {"id": "zstd", "level": 5}},
            [{"name": "zstd", "configuration": {"level": 5, "checksum": False}}],
            [],
        ),
        (
            {"compressor": {"id": "gzip", "level": 6}},
            [{"name": "gzip", "configuration": {"level": 6}}],
            [],
        ),
        (
            {"compressor": {"id": "lz4", "acceleration": 2}},
            [{"name": "numcodecs.lz4", "configuration": {"acceleration": 2}}],
            [],
        ),
        (
            {"compressors": [{"name": "zstd", "configuration": {"level": 9}}]},
            [{"name": "zstd", "configuration": {"level": 9, "checksum": False}}],
            [],
        ),
        ({"compressor": None}, [], []),
        (
            {"compressor": {"id": "zstd", "level": 1},
             "filters": [{"id": "shuffle", "elementsize": 4}, {"id": "quantize", "digits": 3,
                                                                 "dtype": "float32"}]},
            [{"name": "numcodecs.shuffle", "configuration": {"elementsize": 4}},
             {"name": "zstd", "configuration": {"level": 1, "checksum": False}}],
            [{"name": "numcodecs.quantize", "configuration": {"digits": 3, "dtype": "float32"}}],
        ),
    ],
    ids=["blosc", "zstd", "gzip", "numcodecs-lz4", "zarr-v3", "none", "filters"],
)  # fmt: skip
def test_codecs_are_stored_as_zarr_v3_and_read_back(
    settings, compressors, filters, memory_target, small_slice
):
    slices = [small_slice(day) for day in ("2024-01-01", "2024-01-02")]
    versioncube.append(slices, target_dir=memory_target, variables={"pr": {"encoding": settings}})

    cube = open_cube(memory_target)
    array = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")["pr"]
    assert _names(array.compressors) == compressors
    assert _names(array.filters) == filters
    head = cube.to_xarray().load()
    expected = xr.concat(slices, "time")
    if filters:  # quantize is lossy by design: 3 significant digits
        xr.testing.assert_allclose(head, expected, rtol=1e-3)
    else:
        xr.testing.assert_identical(head, expected)


def test_byte_filters_without_a_compressor_go_before_the_default_compressor():
    encoding = codec_encoding({"filters": [{"id": "shuffle"}]}, "variables.x.encoding")
    assert encoding["filters"] is None
    assert [codec.to_dict()["name"] for codec in encoding["compressors"]] == [
        "numcodecs.shuffle",
        "blosc",
    ]


def test_variables_without_a_compressor_get_blosc_lz4(memory_target, small_slice):
    from versioncube import append

    append([small_slice("2024-01-01"), small_slice("2024-01-02")], target_dir=memory_target)
    group = zarr.open_group(
        open_cube(memory_target).repository.readonly_session("main").store, mode="r"
    )
    for name in ("tas", "pr", "time", "lat"):
        (compressor,) = group[name].compressors
        config = compressor.to_dict()["configuration"]
        assert (config["cname"], config["shuffle"]) == ("lz4", "shuffle"), name


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"compressor": {"level": 3}}, "'variables.x.encoding.compressor' must name its codec"),
        ({"compressor": {"id": "zstd", "lvl": 3}}, "invalid codec {'id': 'zstd', 'lvl': 3}"),
        ({"compressors": [{"name": "nope"}]}, "'variables.x.encoding.compressors[0]': invalid"),
        ({"filters": [{"id": "nope"}]}, "'variables.x.encoding.filters[0]': invalid codec"),
    ],
)
def test_bad_codecs_are_config_errors_naming_the_key(settings, message):
    with pytest.raises(ConfigError) as raised:
        codec_encoding(settings, "variables.x.encoding")
    assert message in str(raised.value)


# -- a slice's own codecs ----------------------------------------------------------------------


def _zarr_v2_slices(folder, small_slice, encoding) -> list[str]:
    paths = []
    for day in ("2024-01-01", "2024-01-02"):
        path = folder / f"{day}.zarr"
        small_slice(day).to_zarr(path, zarr_format=2, consolidated=False, encoding=encoding)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_zarr_v2_slice_with_numcodecs_blosc_starts_a_cube(via, tmp_path, small_slice):
    import numcodecs
    from click.testing import CliRunner

    from versioncube.cli import cli

    blosc = {"compressors": (numcodecs.Blosc(cname="zstd", clevel=3, shuffle=2),)}
    paths = _zarr_v2_slices(tmp_path, small_slice, {"tas": blosc})
    target = str(tmp_path / "cube")
    if via == "api":
        assert versioncube.append(paths, target_dir=target) == 2
    else:
        result = CliRunner().invoke(cli, ["append", "-t", target, *paths])
        assert result.exit_code == 0, result.output

    cube = open_cube(target)
    group = zarr.open_group(cube.repository.readonly_session("main").store, mode="r")
    (compressor,) = group["tas"].compressors
    config = compressor.to_dict()["configuration"]
    assert (config["cname"], config["clevel"], config["shuffle"]) == ("zstd", 3, "bitshuffle")
    expected = xr.concat([xr.open_zarr(path, consolidated=False) for path in paths], "time")
    xr.testing.assert_identical(cube.to_xarray().load(), expected.load())


def test_a_codec_without_a_zarr_v3_counterpart_gets_the_default_and_is_logged(
    tmp_path, memory_target, small_slice, caplog
):
    import numcodecs

    paths = _zarr_v2_slices(tmp_path, small_slice, {"tas": {"compressors": (numcodecs.Base64(),)}})
    with caplog.at_level("WARNING", logger="versioncube"):
        assert versioncube.append(paths, target_dir=memory_target) == 2
    assert "variable 'tas': the slice's compressor 'base64' has no Zarr v3 counterpart" in (
        caplog.text
    )
    group = zarr.open_group(
        open_cube(memory_target).repository.readonly_session("main").store, mode="r"
    )
    assert [codec.to_dict()["name"] for codec in group["tas"].compressors] == ["blosc"]


def test_configured_codecs_win_over_the_slice_codecs(tmp_path, memory_target, small_slice):
    import numcodecs

    paths = _zarr_v2_slices(tmp_path, small_slice, {"tas": {"compressors": (numcodecs.Zlib(),)}})
    variables = {"tas": {"encoding": {"compressor": {"id": "zstd", "level": 7}}}}
    versioncube.append(paths, target_dir=memory_target, variables=variables)
    group = zarr.open_group(
        open_cube(memory_target).repository.readonly_session("main").store, mode="r"
    )
    assert _names(group["tas"].compressors) == [
        {"name": "zstd", "configuration": {"level": 7, "checksum": False}}
    ]


def test_a_codec_that_cannot_be_read_is_one_line_naming_variable_and_codec(
    tmp_path, memory_target, small_slice
):
    import json

    (path, _) = _zarr_v2_slices(tmp_path, small_slice, {})
    metadata_path = tmp_path / "2024-01-01.zarr" / "pr" / ".zarray"
    metadata = json.loads(metadata_path.read_text())
    metadata["compressor"] = {"id": "jpeg2k", "level": 3}
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(versioncube.SliceOpenError) as raised:
        versioncube.append([path], target_dir=memory_target)
    message = str(raised.value)
    assert "\n" not in message
    assert "variable 'pr' is compressed with codec 'jpeg2k', which no installed package" in message
