"""GRIB through the cfgrib engine (ecCodes from PyPI wheels): a real ERA5 sample from cfgrib's
sdist, split into files of two time steps each, rebuilds what cfgrib reads from the whole."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli

SAMPLE = "era5-levels-members.grib"  # 10 members x 4 times x 2 levels, 61 x 120 points


def split_by_time(source: Path, folder: Path, steps: int) -> list[Path]:
    """Write the GRIB messages of ``source`` into files of ``steps`` analysis times each, as
    an archive delivers them (GRIB files are concatenated messages)."""
    import eccodes

    by_time: dict[tuple[int, int], list[bytes]] = collections.defaultdict(list)
    with source.open("rb") as file:
        while (message := eccodes.codes_grib_new_from_file(file)) is not None:
            when = (eccodes.codes_get(message, "dataDate"), eccodes.codes_get(message, "dataTime"))
            by_time[when].append(eccodes.codes_get_message(message))
            eccodes.codes_release(message)
    times = sorted(by_time)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(times), steps):
        path = folder / f"{source.stem}-{start:02d}.grib"
        path.write_bytes(
            b"".join(m for when in times[start : start + steps] for m in by_time[when])
        )
        paths.append(path)
    return paths


@pytest.mark.parametrize("via", ["api", "cli"])
def test_a_real_grib_sample_appended_in_parts(via, grib_samples, tmp_path):
    source = grib_samples / SAMPLE
    parts = split_by_time(source, tmp_path / "parts", steps=2)
    assert len(parts) == 2
    target = str(tmp_path / "cube")
    if via == "api":
        summary = versioncube.append_slices([str(path) for path in parts], target_dir=target)
        extents = [result.record.extent() for result in summary.results]
        assert extents == [
            "time 2017-01-01 .. 2017-01-01T12:00",
            "time 2017-01-02 .. 2017-01-02T12:00",
        ]
    else:
        result = CliRunner().invoke(cli, ["append", "-t", target, *map(str, parts)])
        assert result.exit_code == 0, result.output

    head = open_cube(target).to_xarray().load()
    whole = xr.open_dataset(source, engine="cfgrib", backend_kwargs={"indexpath": ""}).load()
    # cfgrib writes the time of reading and the file's path into "history"
    for dataset in (head, whole):
        assert "GRIB to CDM+CF via cfgrib-0.9.15.1" in dataset.attrs.pop("history")
    xr.testing.assert_identical(head, whole)
