"""Configuration: dicts, YAML and JSON files, lists merged in order, ${VAR}, kwargs override."""

from __future__ import annotations

import dataclasses
import json

import fsspec
import pytest

from versioncube.config import Config, load_config, merge_configs
from versioncube.config.model import polling
from versioncube.config.reference import json_schema, markdown, reference
from versioncube.errors import ConfigError


def test_defaults():
    config = load_config()
    assert config.target_dir is None
    assert config.target_branch == "main"
    assert config.append_dim is None
    assert config.dry_run is False
    assert config.zarr_version == 3


def test_files_and_dicts_merge_in_order_and_kwargs_win(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(
        "target_dir: /data/cube\n"
        "append_dim: time\n"
        "target_storage_options:\n  region: eu-west-1\n  allow_http: false\n"
    )
    override = tmp_path / "override.json"
    override.write_text(json.dumps({"target_storage_options": {"allow_http": True}}))

    config = load_config([base, override, {"append_dim": "step"}], dry_run=True)

    assert config.target_dir == "/data/cube"
    assert config.target_storage_options == {"region": "eu-west-1", "allow_http": True}
    assert config.append_dim == "step"
    assert config.dry_run is True


def test_lists_are_replaced_not_merged():
    merged = merge_configs({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": {"d": 2}})
    assert merged == {"a": [3], "b": {"c": 1, "d": 2}}


def test_environment_variables_are_substituted_in_files(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBE_BUCKET", "my-bucket")
    path = tmp_path / "config.yaml"
    path.write_text("target_dir: s3://${CUBE_BUCKET}/cubes/sst\n")

    assert load_config(path).target_dir == "s3://my-bucket/cubes/sst"


def test_unset_environment_variable_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("target_dir: ${NOT_SET_ANYWHERE}\n")

    with pytest.raises(ConfigError, match="environment variable 'NOT_SET_ANYWHERE' is not set"):
        load_config(path)


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


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("target_dir: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping of settings, found list"):
        load_config(listing)


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


def test_yaml_reads_exponents_as_numbers_and_substitutes_plain_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBE_DIR", "/data/cube")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        "target_dir: $CUBE_DIR\n"
        "attrs:\n  price: $$5\n  left: $NOT_SET_ANYWHERE\n"
        "variables:\n  tas:\n    encoding:\n      scale_factor: 1e-3\n      add_offset: -2E+2\n"
    )
    config = load_config(path)
    assert config.target_dir == "/data/cube"
    assert config.attrs == {"price": "$5", "left": "$NOT_SET_ANYWHERE"}
    assert config.variables["tas"]["encoding"] == {"scale_factor": 0.001, "add_offset": -200.0}


def test_variables_merge_deeply_across_files_dicts_and_kwargs(tmp_path, monkeypatch):
    monkeypatch.setenv("TAS_DTYPE", "int16")
    base = tmp_path / "base.yaml"
    base.write_text(
        "variables:\n"
        "  '*':\n    encoding: {chunks: [1, 32, 32]}\n"
        "  tas:\n    encoding: {dtype: ${TAS_DTYPE}, scale_factor: 0.01}\n"
        "    attrs: {units: K}\n"
        "slice_polling: true\n"
    )
    override = {"variables": {"tas": {"encoding": {"scale_factor": 0.02}}}, "append_step": "+"}

    config = load_config([base, override], append_step="1D", dry_run=True)

    assert config.variables == {
        "*": {"encoding": {"chunks": [1, 32, 32]}},
        "tas": {"encoding": {"dtype": "int16", "scale_factor": 0.02}, "attrs": {"units": "K"}},
    }
    assert config.append_step == "1D"  # keyword arguments win last
    assert polling(config.slice_polling) == {"interval": 2.0, "timeout": 60.0}


def test_configuration_files_from_fsspec_uris():
    with fsspec.open("memory://configs/cube.json", "w") as file:
        file.write(json.dumps({"target_dir": "memory://from-uri", "append_step": "1D"}))
    config = load_config("memory://configs/cube.json")
    assert (config.target_dir, config.append_step) == ("memory://from-uri", "1D")


def test_the_reference_documents_every_setting_and_nested_key():
    text = markdown()
    for field in dataclasses.fields(Config):
        assert f"| `{field.name}` |" in text, field.name
    for nested in (
        "variables.NAME.dims", "variables.NAME.encoding.chunks", "variables.NAME.encoding.shards",
        "variables.NAME.encoding.compressor", "variables.NAME.attrs", "slice_polling.timeout",
        "profiling.restrictions",
    ):  # fmt: skip
        assert f"| `{nested}` |" in text, nested
    assert reference("md") == text


def test_the_json_reference_is_a_json_schema_of_the_same_settings():
    schema = json.loads(reference("json"))
    assert schema == json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {field.name for field in dataclasses.fields(Config)}
    variable = schema["properties"]["variables"]["additionalProperties"]
    assert set(variable["properties"]) == {"dims", "encoding", "attrs"}
    chunks = variable["properties"]["encoding"]["properties"]["chunks"]
    assert chunks["anyOf"][0]["items"]["anyOf"][0] == {"type": "integer", "exclusiveMinimum": 0}
    assert schema["properties"]["attrs_update_mode"]["enum"] == [
        "keep", "replace", "update", "ignore"
    ]  # fmt: skip
    assert schema["properties"]["zarr_version"]["const"] == 3
