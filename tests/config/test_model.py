"""The settings model: defaults, every setting declared with help and a type, values checked
by their key path, every zappend setting accepted."""

from __future__ import annotations

import pytest

from versioncube.config import Config, load_config
from versioncube.errors import ConfigError


def test_defaults():
    config = load_config()
    assert config.target_dir is None
    assert config.target_branch == "main"
    assert config.append_dim is None
    assert config.dry_run is False
    assert config.zarr_version == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"target_dri": "x"},
            "unknown configuration key 'target_dri' (did you mean 'target_dir'?)",
        ),
        ({"dry_run": "yes"}, "configuration key 'dry_run' must be true or false, found str 'yes'"),
        ({"append_dim": 3}, "configuration key 'append_dim' must be a string or null, found int 3"),
        ({"target_storage_options": [1]}, "'target_storage_options' must be a mapping"),
        (
            {"zarr_version": 2},
            "configuration key 'zarr_version' must be 3, found int 2: Icechunk stores Zarr "
            "format 3 only",
        ),
        ({"version": 2}, "configuration key 'version' must be 1"),
    ],
)
def test_bad_values_are_rejected_by_name(values, message):
    with pytest.raises(ConfigError) as raised:
        Config.from_dict(values)
    assert message in str(raised.value)


def test_every_setting_has_help_and_a_type():
    rows = Config.settings()
    assert {name for name, *_ in rows} >= {"target_dir", "append_dim", "dry_run"}
    for name, type_name, _default, help_text in rows:
        assert type_name, name
        assert help_text.endswith("."), name


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"variables": {"tas": {"encoding": {"chunk": [1]}}}},
            "unknown configuration key 'variables.tas.encoding.chunk' (did you mean 'chunks'?)",
        ),
        (
            {"variables": {"tas": {"dim": ["time"]}}},
            "unknown configuration key 'variables.tas.dim' (did you mean 'dims'?)",
        ),
        (
            {"variables": {"tas": {"encoding": {"chunks": [1, "x"]}}}},
            "configuration key 'variables.tas.encoding.chunks[1]' must be an integer greater "
            "than 0 or null, found str 'x'",
        ),
        (
            {"variables": {"tas": {"encoding": {"chunks": [1, 0]}}}},
            "configuration key 'variables.tas.encoding.chunks[1]' must be greater than 0",
        ),
        (
            {"variables": {"*": {"encoding": {"dtype": "float16"}}}},
            "configuration key 'variables.*.encoding.dtype' must be \"int8\" or",
        ),
        (
            {"variables": {"tas": {"encoding": {"fill_value": "nan"}}}},
            "configuration key 'variables.tas.encoding.fill_value' must be a number or \"NaN\"",
        ),
        ({"variables": {"tas": {"dims": "time"}}}, "'variables.tas.dims' must be a list"),
        ({"variables": {"tas": []}}, "configuration key 'variables.tas' must be a mapping"),
        ({"fixed_dims": {"lat": 1.5}}, "'fixed_dims.lat' must be an integer greater than 0"),
        ({"slice_polling": {"interval": 0}}, "'slice_polling.interval' must be greater than 0"),
        ({"slice_polling": {"timeot": 3}}, "'slice_polling.timeot' (did you mean 'timeout'?)"),
        ({"slice_polling": "yes"}, "'slice_polling' must be true or false or a mapping"),
        ({"append_step": "1Q"}, '\'append_step\' must be null, "+", "-", a non-zero time'),
        ({"append_step": 0}, "'append_step' must be null"),
        ({"append_step": "x"}, "'append_step' must be null"),
        ({"attrs_update_mode": "merge"}, '\'attrs_update_mode\' must be "keep" or "replace"'),
        ({"logging": "LOUD"}, "'logging' must be true or false or \"CRITICAL\""),
        ({"profiling": {"keys": "tottime"}}, "'profiling.keys' must be a list"),
        ({"slice_source": 3}, "'slice_source' must be a string or a callable or null"),
        ({"included_variables": "tas"}, "'included_variables' must be a list"),
    ],
)
def test_nested_values_are_checked_by_their_key_path(values, message):
    with pytest.raises(ConfigError) as raised:
        Config.from_dict(values)
    assert message in str(raised.value)


def test_every_zappend_setting_is_accepted():
    zappend_settings = {
        "version": 1, "zarr_version": 3, "append_dim": "time", "append_step": "1D",
        "fixed_dims": {"lat": 6}, "included_variables": ["tas"], "excluded_variables": ["pr"],
        "variables": {
            "*": {"encoding": {"chunks": None}},
            "tas": {
                "dims": ["time", "lat", "lon"],
                "encoding": {
                    "dtype": "int16", "chunks": [1, None, 12], "fill_value": -999,
                    "scale_factor": 0.01, "add_offset": 280.0,
                    "compressor": {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2},
                    "filters": [{"id": "delta", "dtype": "int16"}],
                },
                "attrs": {"units": "K"},
            },
            "time": {"encoding": {"units": "hours since 2000-01-01", "calendar": "standard"}},
        },
        "attrs": {"title": "x", "end": "{{ ds.time[-1] }}"}, "attrs_update_mode": "update",
        "permit_eval": True, "target_dir": "memory://x", "target_storage_options": {},
        "force_new": False, "slice_storage_options": {"anon": True}, "slice_engine": "h5netcdf",
        "slice_polling": {"interval": 1, "timeout": 10}, "slice_source": "package.module.name",
        "slice_source_kwargs": {"bbox": [0, 0, 1, 1]}, "persist_mem_slices": True,
        "temp_dir": "/tmp", "temp_storage_options": {}, "disable_rollback": True,
        "dry_run": False, "extra": {"q": [0.1]}, "profiling": {"path": "p.out"},
        "logging": "DEBUG",
    }  # fmt: skip
    config = Config.from_dict(zappend_settings)
    assert {key: getattr(config, key) for key in zappend_settings} == zappend_settings
