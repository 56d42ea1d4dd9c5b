"""Configuration: dicts, YAML and JSON files, lists merged in order, ${VAR}, kwargs override."""

from __future__ import annotations

import json

import fsspec
import pytest

from versioncube.config import load_config, merge_configs
from versioncube.config.model import polling
from versioncube.errors import ConfigError


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


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("target_dir: [unclosed\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML: .* \(line 2, column 1\)$") as caught:
        load_config(broken)
    assert "\n" not in str(caught.value)  # PyYAML's own message spans several lines
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"target_dir": }')
    with pytest.raises(ConfigError, match="is not valid JSON: Expecting value: line 1"):
        load_config(broken_json)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping of settings, found list"):
        load_config(listing)


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
