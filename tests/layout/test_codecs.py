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
