"""The repository behind a target: its Icechunk settings."""

from __future__ import annotations

from versioncube.store.repository import repository_config


def test_repository_config_splits_manifests_along_the_append_dim():
    config = repository_config("time")
    assert config.manifest is not None
    assert "time" in repr(config.manifest.splitting)
