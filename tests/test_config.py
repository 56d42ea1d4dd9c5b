"""Configuration: dicts, YAML and JSON files, lists merged in order, ${VAR}, kwargs override."""

from __future__ import annotations

import json

import pytest

from versioncube.config import Config, load_config, merge_configs
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
        ({"zarr_version": 2}, "configuration key 'zarr_version' must be 3, found int 2"),
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
