"""Realistic sample slices for the demo, the tests and the benchmarks.

Fields are smooth in space and time (a travelling wave on a sphere plus a seasonal cycle), so
they compress like real geophysical data instead of like white noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr


def sample_slice(
    time: str | pd.Timestamp | Sequence[str | pd.Timestamp],
    *,
    shape: tuple[int, int] = (90, 180),
    variables: Sequence[str] = ("tas", "pr"),
    dtype: str = "float32",
) -> xr.Dataset:
    """A slice of global fields on a regular lat/lon grid at the given time label(s)."""
    times = pd.DatetimeIndex(np.atleast_1d(np.asarray(time, dtype="datetime64[ns]")))
    nlat, nlon = shape
    lat = np.linspace(-90 + 90 / nlat, 90 - 90 / nlat, nlat)
    lon = np.linspace(0, 360, nlon, endpoint=False)
    day = ((times - pd.Timestamp("2000-01-01")) / pd.Timedelta(days=1)).to_numpy()[:, None, None]
    phi = np.deg2rad(lat)[None, :, None]
    lam = np.deg2rad(lon)[None, None, :]
    season = np.cos(2 * np.pi * day / 365.25)
    wave = np.sin(3 * lam - 2 * np.pi * day / 10) * np.cos(phi) ** 2
    fields = {
        "tas": 288 - 30 * np.sin(phi) ** 2 + 5 * season * np.sin(phi) + 3 * wave,
        "pr": np.clip(4 * np.cos(3 * phi) ** 2 + 2 * wave + season, 0, None),
        "psl": 1013 + 8 * np.cos(2 * phi) * np.sin(2 * lam - 2 * np.pi * day / 6),
    }
    units = {"tas": "K", "pr": "mm day-1", "psl": "hPa"}
    names = {
        "tas": "air_temperature",
        "pr": "precipitation_flux",
        "psl": "air_pressure_at_sea_level",
    }
    data_vars = {}
    for name in variables:
        values = np.broadcast_to(fields[name], (len(times), nlat, nlon)).astype(dtype)
        data_vars[name] = xr.Variable(
            ("time", "lat", "lon"),
            values,
            {"units": units[name], "standard_name": names[name]},
        )
    return xr.Dataset(
        data_vars,
        coords={
            "time": ("time", times.values),
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"title": "versioncube sample fields", "Conventions": "CF-1.8"},
    )


def write_daily_files(
    folder: str | Path, start: str, days: int, **slice_options: Any
) -> list[Path]:
    """Write one NetCDF file per day (``YYYY-MM-DD.nc``) into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in pd.date_range(start, periods=days, freq="D"):
        path = folder / f"{day:%Y-%m-%d}.nc"
        sample_slice(day, **slice_options).to_netcdf(path)
        paths.append(path)
    return paths


def main(arguments: Sequence[str] | None = None) -> None:
    """``python -m versioncube.samples FOLDER START DAYS``: daily NetCDF files to try
    versioncube with (the README's command-line examples start from them)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m versioncube.samples",
        description="Write one sample NetCDF file per day (YYYY-MM-DD.nc) into FOLDER.",
    )
    parser.add_argument("folder")
    parser.add_argument("start", help="the first day, e.g. 2024-03-01")
    parser.add_argument("days", type=int, help="how many days")
    given = parser.parse_args(arguments)
    paths = write_daily_files(given.folder, given.start, given.days, shape=(45, 90))
    print(f"wrote {len(paths)} files to {given.folder}: {paths[0].name} .. {paths[-1].name}")


if __name__ == "__main__":
    main()
