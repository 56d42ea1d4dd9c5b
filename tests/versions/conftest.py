"""Fixtures of the version tests: twenty days of slices, and a cube of the first five."""

from __future__ import annotations

import pandas as pd
import pytest

from versioncube import open_cube

DAYS = pd.date_range("2024-03-01", periods=20)


@pytest.fixture
def days(small_slice):
    """The slices of 20 consecutive days."""
    return [small_slice(day) for day in DAYS]


@pytest.fixture
def grown(memory_target, days):
    """A cube of the first five days, one commit each."""
    cube = open_cube(memory_target)
    for item in days[:5]:
        cube.append(item)
    return cube
