"""Pictures are checked by what they draw (parts named by their gid), not by pixels: a cube with
appends, a replace and a delete (written by `Cube.write` and `Cube.delete`), a tag, a branch head
and a gap."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from versioncube.cli import cli
from versioncube.testing.records import cube_with_every_kind_of_commit


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    return cube_with_every_kind_of_commit(str(tmp_path_factory.mktemp("plots") / "cube"))


def _drawn(figure, prefix):
    """Parts of the picture whose gid starts with ``prefix``: (gid, count of shapes)."""
    ax = figure.axes[0]
    found = []
    for artist in [*ax.collections, *ax.patches, *ax.texts, *ax.lines]:
        gid = artist.get_gid() or ""
        if gid.startswith(prefix):
            paths = artist.get_paths() if hasattr(artist, "get_paths") else [artist]
            found.append((gid, len(paths)))
    return found


def test_the_history_draws_every_commit_by_its_operation(cube):
    figure = cube.plot_history()
    commits = dict(_drawn(figure, "commits:"))
    assert commits == {
        "commits:create": 1,
        "commits:append": 9,
        "commits:replace": 1,
        "commits:delete": 1,
    }
    assert sum(commits.values()) == len(cube.log())
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["create", "append", "replace", "delete", "missing labels"]


def test_the_history_marks_the_gap_tags_and_heads(cube):
    figure = cube.plot_history()
    assert [gid for gid, _ in _drawn(figure, "gap")] == ["gap"]  # 03-06 .. 03-07
    assert sorted(gid for gid, _ in _drawn(figure, "tag:")) == ["tag:v1"]
    assert sorted(gid for gid, _ in _drawn(figure, "head:")) == ["head:dev", "head:main"]
    gap = cube.history().gaps
    assert [(str(run.first)[:10], str(run.end)[:10], run.count) for run in gap] == [
        ("2024-03-06", "2024-03-08", 2)
    ]


def test_each_commit_spans_the_labels_of_its_record(cube):
    import numpy as np
    from matplotlib.dates import date2num

    figure = cube.plot_history()
    (delete,) = [c for c in figure.axes[0].collections if c.get_gid() == "commits:delete"]
    corners = delete.get_paths()[0].vertices[:, 0]
    left, right = corners.min(), corners.max()
    assert left == date2num(np.datetime64("2024-03-12"))
    assert right == date2num(np.datetime64("2024-03-13"))  # one step wide


def test_the_gaps_follow_the_step_given(cube):
    """By two-day steps, 03-06 and 03-07 are one missing step; by weeks, none is missing."""
    (gap,) = cube.history("2D").gaps
    assert (str(gap.first)[:10], gap.count) == ("2024-03-06", 1)
    assert not cube.history("1W").gaps
    assert _drawn(cube.plot_history("1W"), "gap") == []


def test_coverage_draws_its_runs(cube):
    coverage = cube.coverage("1D")
    figure = coverage.plot()
    drawn = [gid for gid, _ in _drawn(figure, "coverage:")]
    assert drawn == ["coverage:present", "coverage:missing", "coverage:present"]


def test_a_diff_draws_the_changed_label_ranges(cube):
    figure = cube.diff("v1").plot()
    assert sorted(gid for gid, _ in _drawn(figure, "change:")) == [
        "change:added",
        "change:rewritten",
    ]


def test_a_value_difference_draws_a_map(cube):
    difference = cube.diff_values("v1", variable="tas", label="2024-03-03")
    assert (difference.changed_cells, difference.total_cells, difference.largest) == (32, 32, 1.0)
    figure = difference.plot()
    (mesh,) = [c for c in figure.axes[0].collections if c.get_gid() == "difference"]
    assert mesh.get_array().shape == (4, 8)
    assert float(mesh.get_array().min()) == pytest.approx(1.0)


def test_figures_show_themselves_as_png_in_notebooks(cube):
    png = cube.plot_history()._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_drawing_into_given_axes(cube):
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert cube.plot_history(ax=left) is figure
    assert cube.coverage().plot(ax=right) is figure
    assert dict(_drawn(figure, "commits:"))["commits:append"] == 9


def test_show_and_coverage_write_pictures_from_the_cli(cube, tmp_path):
    runner = CliRunner()
    target = cube.target.uri
    shown = runner.invoke(cli, ["show", "-t", target, "--plot", str(tmp_path / "history.png")])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.rstrip("\n") == cube.info().describe()
    assert (tmp_path / "history.png").read_bytes().startswith(b"\x89PNG")
    found = runner.invoke(
        cli, ["coverage", "-t", target, "--step", "1D", "--plot", str(tmp_path / "c.svg")]
    )
    assert found.exit_code == 0, found.output
    assert found.stdout.rstrip("\n") == cube.coverage("1D").describe()
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()


def test_matplotlib_is_imported_only_to_draw():
    code = (
        "import sys, versioncube.cli, versioncube.cube, versioncube.versions.history, "
        "versioncube.display.plots; assert 'matplotlib' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_matplotlib_pictures_say_how_to_get_it(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from versioncube import MissingDependencyError\n"
        "from versioncube.display.plots import draw_coverage\n"
        "try:\n"
        "    draw_coverage([], title='', xlabel='')\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "pictures need matplotlib: pip install 'versioncube[plot]'"
