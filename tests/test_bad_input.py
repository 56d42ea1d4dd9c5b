"""Every kind of bad input gets a clear error, the tip does not move, and the next good slice
appends normally (the catalogue is versioncube/testing/bad_inputs.py; docs/bad-input.md shows
it)."""

from __future__ import annotations

import uuid

import pytest
import xarray as xr

from versioncube.testing import commits, tip
from versioncube.testing.bad_inputs import CASES, cube_with_two_days, error_text, good


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_bad_input_leaves_the_tip_where_it_was(case, tmp_path):
    target = f"memory://{uuid.uuid4().hex}"
    cube = cube_with_two_days(target)
    before = tip(cube)

    message = error_text(case, tmp_path, target)

    assert message  # a message that says what went wrong
    assert "\n" not in message  # one line
    assert tip(cube) == before
    assert cube.append(good()).status == "appended"
    assert len(commits(cube)) == 3
    expected = xr.concat([good("2024-01-01"), good("2024-01-02"), good()], "time")
    xr.testing.assert_identical(cube.to_xarray().load(), expected)


def test_there_are_at_least_twenty_kinds():
    assert len(CASES) >= 20
    assert len({case.what for case in CASES}) == len(CASES)
