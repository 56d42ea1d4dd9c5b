"""Real data: the example files of the ``eofs`` package, one file per time step.

Synthetic slices (:mod:`versioncube.samples`) are smooth and regular; these are real
reanalysis fields (``hgt_djf``: geopotential height, ``sst_ndjfm_anom``: sea-surface
temperature anomalies with missing values over land), with the encodings and attributes real
files carry. Split into one file per time step, as archives deliver them, appending the steps
one by one must rebuild the original exactly: :func:`open_source` is what to compare against.

``eofs`` is a ``test`` extra; it is imported when a file is asked for.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import xarray as xr

#: hgt_djf.nc says "hours since 1-1-1", which xarray reads with a warning about the year
AMBIGUOUS_REFERENCE_DATE = "Ambiguous reference date string"

#: the eofs example files that have a time dimension to split along
NAMES = ("hgt_djf", "sst_ndjfm_anom")


def example_path(name: str) -> Path:
    """The path of the eofs example file ``name`` (one of :data:`NAMES`)."""
    from eofs.examples import example_data_path  # type: ignore[import-untyped]

    return Path(example_data_path(f"{name}.nc"))


def split_into_steps(source: Path, folder: Path) -> list[Path]:
    """Write each time step of a NetCDF file into its own file, as archives deliver them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        dataset = xr.open_dataset(source).load()
        for index in range(dataset.sizes["time"]):
            path = folder / f"{source.stem}_{index:03d}.nc"
            dataset.isel(time=[index]).to_netcdf(path)
            paths.append(path)
    return paths


def open_source(name: str) -> xr.Dataset:
    """The whole eofs example file ``name``, loaded: what its steps, appended, must equal."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", AMBIGUOUS_REFERENCE_DATE)
        return xr.open_dataset(example_path(name)).load()
