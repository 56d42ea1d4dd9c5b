"""The benchmark harness runs end to end at its tiniest size; no timing is asserted.

zappend (C) needs its own virtual environment, so it is left out here; the report still lists
its comparisons as not run.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import xarray as xr

import versioncube
from benchmarks import distributed, history, levels, phases, reads, throughput, updates, writers
from benchmarks.__main__ import main
from benchmarks.report import Comparison, Goal, Ref, Report, Result, Section
from benchmarks.workloads import DATA_VARIABLES, WRITERS, IcechunkFloor, make_slices
from versioncube.samples import write_daily_files

EXPECTED_CASES = {
    "A": [
        *WRITERS,
        "versioncube, from NetCDF files",
        "versioncube, Zarr's default chunks",
        *(f"{name}, {codec}" for codec in ("blosc lz4", "no compression") for name in WRITERS),
        "versioncube, zstd level 0",
        throughput.FLOOR,
        throughput.ICECHUNK_FLOOR,
    ],
    "B": list(WRITERS),
    "D": ["versioncube"],
    "E": [reads.FIRST, reads.HEAD, reads.HELP],
    "L": [levels.PYRAMID, levels.PYRAMID_LOOP, levels.FLAT, levels.TREE, levels.TREE_LOOP],
    "P": [step for step, _, _ in phases.STEPS] + [phases.OTHER, phases.TOTAL],
    "W": [writers.case_name(s, n) for s in writers.STORAGES for n in writers.WRITER_COUNTS],
    "H": [
        *(
            history.case("local", n, what)
            for n in (4, 8)
            for what in (
                history.ONE_CALL,
                history.BARE,
                history.OPEN,
                history.PROCESS,
                history.XARRAY,
                history.LOG,
                history.SHOW,
                history.TAG_READ,
            )
        ),
        f"local, 13 commits: {history.ONE_CALL} after gc kept 11",
        f"local, projected to 100,000 commits: {history.ONE_CALL}",
        *(
            history.case("S3", 4, what)
            for what in (
                history.ONE_CALL,
                history.BARE,
                history.OPEN,
                history.LOG,
                history.SHOW,
                history.TAG_READ,
            )
        ),
    ],
    "V": [
        f"{mode}, {n} {kind}"
        for n, kind in (
            (2, "small files"),
            (2, "larger files"),
            (2, "larger files, 3-level pyramid"),
        )
        for mode in ("virtual", "copied")
    ],
    "X": [
        distributed.THREADED,
        distributed.ONE_WORKER,
        distributed.TWO_WORKERS,
        distributed.SERIAL,
        distributed.PARALLEL,
        distributed.ARCHIVE_SERIAL,
        distributed.ARCHIVE_PARALLEL,
    ],
    "U": [
        f"{who}, {case}, chunk {chunk}"
        for chunk in updates.CHUNKS
        for who, case in (
            ("versioncube", "rewrite 10 contiguous of 60"),
            ("xarray", "rewrite 10 contiguous of 60"),
            ("versioncube", "rewrite 10 scattered of 60"),
            ("xarray", "rewrite 10 scattered of 60"),
            ("versioncube", "insert 10 in the middle of 100"),
            ("xarray (tail rewrite)", "insert 10 in the middle of 100"),
        )
    ],
}


#: with pytest-xdist, the tests of the tiny run go to one worker, which runs it once
TINY_RUN = pytest.mark.xdist_group("tiny-benchmark-run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, str]:
    folder = tmp_path_factory.mktemp("bench")
    main(["--size", "tiny", "--skip", "C", "--out", str(folder / "results")])
    results = folder / "results"
    return json.loads((results / "latest.json").read_text()), (results / "latest.md").read_text()


@pytest.mark.slow  # the whole tiny benchmark run, writer processes included
@TINY_RUN
def test_every_benchmark_and_case_is_reported(tiny_run):
    data, markdown = tiny_run
    assert {
        section["key"]: [r["case"] for r in section["results"]] for section in data["sections"]
    } == EXPECTED_CASES
    for section in data["sections"]:
        assert f"## {section['key']}. {section['title']}" in markdown
        for result in section["results"]:
            assert result["metrics"], result["case"]
            assert f"| {result['case']} | {result['summary']} |" in markdown


@pytest.mark.slow  # the whole tiny benchmark run, writer processes included
@TINY_RUN
def test_ratios_follow_from_the_raw_numbers_and_stand_next_to_their_goals(tiny_run):
    data, markdown = tiny_run
    metrics = {
        (section["key"], result["case"]): result["metrics"]
        for section in data["sections"]
        for result in section["results"]
    }
    compared = 0
    for section in data["sections"]:
        for row in section["comparisons"]:
            numerator = metrics[row["numerator"]["section"], row["numerator"]["case"]]
            expected = numerator[row["numerator"]["metric"]]
            if row["denominator"] is not None:
                denominator = metrics[row["denominator"]["section"], row["denominator"]["case"]]
                expected /= denominator[row["denominator"]["metric"]]
            assert row["value"] == pytest.approx(expected), row["name"]
            goal = row["goal"]
            if goal is not None:
                assert row["met"] == Goal(goal["op"], goal["limit"]).met(row["value"])
                limit = Goal(goal["op"], goal["limit"]).describe(row["unit"])
                assert f"| {row['name']} | {row['value']:.2f}{row['unit']} | {limit} |" in markdown
            compared += 1
    assert compared >= 14


@pytest.mark.slow  # the whole tiny benchmark run, writer processes included
@TINY_RUN
def test_report_header_describes_the_machine_and_the_libraries(tiny_run):
    data, markdown = tiny_run
    assert data["machine"]["cores"] >= 1 and data["machine"]["ram_gib"] > 0
    assert {"versioncube", "icechunk", "zarr", "xarray", "numpy", "dask"} <= set(data["libraries"])
    assert (
        data["machine"]["cpu"] in markdown
        and f"icechunk {data['libraries']['icechunk']}" in markdown
    )


@pytest.mark.slow  # the whole tiny benchmark run, writer processes included
@TINY_RUN
def test_concurrent_writers_append_every_slice_once_and_skip_the_others(tiny_run):
    data, _ = tiny_run
    (section,) = [section for section in data["sections"] if section["key"] == "W"]
    for result in section["results"]:
        metrics = result["metrics"]
        assert metrics["skipped"] == (metrics["writers"] - 1) * metrics["slices"], result["case"]
        assert metrics["appends_per_s"] == pytest.approx(metrics["slices"] / metrics["seconds"])


def test_the_floor_on_icechunk_stores_the_fields_it_was_given(tmp_path):
    slices = make_slices(3, (6, 10))
    floor = IcechunkFloor(tmp_path / "floor")
    for dataset in slices:
        floor.append(dataset)

    session = floor.repo.readonly_session("main")
    stored = xr.open_zarr(session.store, consolidated=False)
    expected = xr.concat([dataset[list(DATA_VARIABLES)] for dataset in slices], "time")
    xr.testing.assert_equal(stored.load(), expected.drop_vars("time"))
    assert len(list(floor.repo.ancestry(branch="main"))) == 1 + len(slices)


def test_the_updates_benchmark_moves_references_where_xarray_rewrites_the_tail(tmp_path):
    report = main(["--size", "tiny", "--only", "U", "--out", str(tmp_path / "results")])
    data = report.to_json()
    (section,) = data["sections"]
    assert [result["case"] for result in section["results"]] == EXPECTED_CASES["U"]
    metrics = {result["case"]: result["metrics"] for result in section["results"]}
    insert = "insert 10 in the middle of 100, chunk 1"
    moved = metrics[f"versioncube, {insert}"]["objects"]
    assert moved < metrics[f"xarray (tail rewrite), {insert}"]["objects"] / 2


def test_the_writers_benchmark_fails_loudly_when_a_slice_is_missing(tmp_path, memory_target):
    files = write_daily_files(tmp_path / "slices", "2024-01-01", 3, shape=(4, 8))
    versioncube.append(files[:2], target_dir=memory_target)
    done = writers.Run(1.0, [{"appended": 2, "skipped": 0, "conflicts": 0}])

    with pytest.raises(RuntimeError, match="2 commits for 3 slices"):
        writers.check_exactly_once(writers.Target(memory_target, {}), files, done)


def test_a_comparison_with_a_section_not_run_says_so():
    ran = Section("A", "Throughput", "", [Result("versioncube", {"mb_per_s": 2.0}, "2 MB/s")])
    wanted = Comparison(
        "versioncube / zappend",
        Ref("A", "versioncube", "mb_per_s"),
        Ref("C", "zappend", "mb_per_s"),
        Goal(">=", 1.0),
    )
    ran.comparisons.append(wanted)
    report = Report("tiny", [ran], {})
    assert report.value(wanted) is None
    assert report.to_json()["sections"][0]["comparisons"][0]["met"] is None


def test_unknown_benchmarks_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "A,Z"])
    assert "unknown benchmark(s) Z" in capsys.readouterr().err


def test_the_zappend_runner_imports_nothing_of_ours():
    """It runs in zappend's venv, where neither versioncube nor zarr 3 is installed."""
    runner = Path(__file__).resolve().parent.parent / "benchmarks" / "zappend_runner.py"
    imported = set()
    for node in ast.walk(ast.parse(runner.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "zappend" in imported
    assert not imported & {"versioncube", "benchmarks", "icechunk"}
