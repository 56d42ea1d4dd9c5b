"""The cluster settings of a run: sizes, and what is (not) configured."""

from __future__ import annotations

import pytest

from versioncube.config import load_config
from versioncube.errors import ConfigError
from versioncube.store.cluster import ClusterSettings, active_client, parse_memory


@pytest.mark.parametrize(
    ("given", "expected"),
    [("2GiB", 2 * 2**30), ("500MB", 500_000_000), (1234, 1234), (None, None)],
)
def test_memory_limits_are_sizes(given, expected):
    assert parse_memory(given) == expected


def test_a_memory_limit_that_is_not_a_size_is_refused():
    with pytest.raises(ConfigError, match="memory_limit 'lots' is not a size"):
        parse_memory("lots")


def test_the_settings_come_from_the_configuration():
    config = load_config(
        {"dask_scheduler": "tcp://head:8786", "memory_limit": "1GiB", "parallel": True}
    )
    settings = ClusterSettings.of(config.dask_scheduler, config.dask_workers, config.memory_limit)
    assert settings == ClusterSettings("tcp://head:8786", None, 2**30)
    assert settings.configured and config.parallel
    assert not ClusterSettings().configured


def test_dask_workers_must_be_positive():
    with pytest.raises(ConfigError, match="dask_workers"):
        load_config({"dask_workers": 0})


def test_no_client_is_active_by_default():
    assert active_client() is None
