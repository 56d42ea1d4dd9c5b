"""The repository behind a target: its Icechunk settings, saved and for sessions."""

from __future__ import annotations

import icechunk

import versioncube
from versioncube import open_cube
from versioncube.store.repository import repository_config


def test_repository_config_splits_manifests_along_the_append_dim():
    config = repository_config("time")
    assert config.manifest is not None
    assert "time" in repr(config.manifest.splitting)


def test_sessions_skip_manifest_preloading_without_saving_that(tmp_path, small_slice):
    """versioncube's sessions do not preload manifests (each session would pay for it), and
    the repository's saved settings stay what a plain Icechunk reader gets."""
    target = str(tmp_path / "cube")
    versioncube.append([small_slice("2024-03-01")], target_dir=target)
    repo = open_cube(target).repository
    assert repo.config.manifest.preload.max_total_refs == 0
    assert repo.config.manifest.splitting is not None
    saved = icechunk.Repository.fetch_config(icechunk.local_filesystem_storage(target))
    assert saved is not None and saved.manifest is not None
    assert saved.manifest.preload is None
    assert "time" in repr(saved.manifest.splitting)
