"""Every kind of bad input gets a clear error, in Python and on the command line; nothing
moves (no branch or tag, no file of a local target) and the next good slice appends normally.
The catalogue is versioncube/testing/bad_inputs.py; docs/bad-input.md shows it."""

from __future__ import annotations

from pathlib import Path

import dask
import pytest
import xarray as xr

from versioncube.testing import commits
from versioncube.testing.bad_inputs import (
    CASES,
    KINDS,
    SEEN,
    Scenes,
    good,
    python_error,
    shown_message,
    target_state,
)
from versioncube.testing.cli_checks import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The cubes the cases are tried against (the templates on disk are built once)."""
    return Scenes(tmp_path_factory.mktemp("scenes"))


def _params():
    for case in CASES:
        # the S3 server takes seconds to start; a slow case as long to prepare
        marks = [pytest.mark.slow] if case.needs_s3 or case.slow else []
        yield pytest.param(case, id=f"{case.kind}: {case.what}", marks=marks)


# with pytest-xdist, in the worker that checks docs/bad-input.md after them (tests/test_docs.py),
# which then uses the messages seen here (bad_inputs.SEEN) instead of trying every case again
@pytest.mark.xdist_group("bad-input")
@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_is_one_line_and_changes_nothing(case, scenes, tmp_path, request):
    if case.needs_s3:
        scenes.s3_options = request.getfixturevalue("seaweedfs")
    scene = scenes.make(case, tmp_path / "case")
    attempt = case.attempt(scene)
    watched = [scene.target, *([attempt.watched] if attempt.watched else [])]
    before = [target_state(target) for target in watched]

    with dask.config.set(case.test_dask_config):
        error = python_error(case, attempt)
    message = str(error)
    if not case.test_dask_config:  # what the page shows, as docs/generate_reference.py gets it
        SEEN[case.what] = shown_message(message, scene)
    assert case.says in message, message
    assert "\n" not in message  # one line
    assert [target_state(target) for target in watched] == before

    with dask.config.set(case.test_dask_config):
        result = run_cli(*attempt.command)
    line = assert_one_line_error(result, attempt.cli_says or case.says)
    expected = attempt.cli_message(message)
    if expected is not None:
        assert line == f"Error: {expected}"
    assert result.stdout == ""
    assert [target_state(target) for target in watched] == before

    cube = scene.cube()
    count = len(commits(cube))
    assert cube.append(good(scene.next_day)).status == "appended"
    assert len(commits(cube)) == count + 1
    expected = xr.concat([good(day) for day in (*scene.days, scene.next_day)], "time")
    xr.testing.assert_identical(cube.to_xarray().load(), expected)


def test_the_catalogue_has_45_distinct_kinds_of_every_kind():
    assert len(CASES) >= 45
    assert len({case.what for case in CASES}) == len(CASES)
    assert {case.kind for case in CASES} == set(KINDS)


@pytest.mark.parametrize("page", ["README.md", "docs/concurrency.md"])
def test_the_docs_give_the_number_of_kinds(page):
    text = (Path(__file__).resolve().parents[1] / page).read_text()
    assert f"{len(CASES)} kinds of bad input" in text or f"the {len(CASES)} kinds" in text
