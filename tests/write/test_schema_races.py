"""add-variable racing appends, in real processes, on local disk and on an S3 server: the cube
always opens, every array along the append dimension has the cube's length, and exactly the
committed operations are visible."""

from __future__ import annotations

import numpy as np
import pytest

from versioncube import open_cube
from versioncube.testing.racing import race_schema_changes

pytestmark = pytest.mark.slow  # real processes racing

APPENDS, VARIABLES = 6, 4


def _check(uri: str, options: dict) -> None:
    race = race_schema_changes(uri, options, appends=APPENDS, variables=VARIABLES)

    assert len(race.reported) == APPENDS + VARIABLES
    assert set(race.reported) == race.on_branch  # nothing lost, nothing extra
    cube = open_cube(uri, storage_options=options)
    dataset = cube.to_xarray()  # opens: the lengths agree
    assert dataset.sizes["time"] == 3 + APPENDS
    for number in range(VARIABLES):
        variable = dataset[f"v{number}"]
        assert variable.sizes["time"] == 3 + APPENDS
        values = variable.values
        assert not np.isnan(values[0]).any()  # the day given
        assert np.isnan(values[1:]).all()  # every other day, appended before or after: filled
    assert cube.verify().ok
    operations = [entry.operation for entry in reversed(cube.log())]
    assert operations.count("add-variable") == VARIABLES
    assert operations.count("append") == 2 + APPENDS


def test_add_variable_racing_appends_on_local_disk(tmp_path):
    _check(str(tmp_path / "cube"), {})


def test_add_variable_racing_appends_on_s3(s3_target):
    uri, options = s3_target
    _check(uri, options)
