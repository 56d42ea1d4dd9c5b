"""diff: what changed between two versions, labels, variables and attributes."""

from __future__ import annotations

import pandas as pd
import xarray as xr
import zarr

from versioncube.testing import tip

DAYS = pd.date_range("2024-03-01", periods=20)


def test_diff_reports_added_removed_and_rewritten_labels(grown, days, small_slice):
    before_rollback = tip(grown)
    grown.rollback("~2")
    changed = small_slice(DAYS[3]).assign(tas=lambda d: d.tas + 1)
    grown.append(changed)

    changes = grown.diff(before_rollback)

    assert [str(span) for span in changes.labels_removed] == ["2024-03-05 (1 step)"]
    assert [str(span) for span in changes.labels_rewritten] == ["2024-03-04 (1 step)"]
    assert changes.labels_added == []
    assert [str(c) for c in changes.values_changed["tas"]] == [
        "2024-03-04 (1 step): 72 cells changed, by at most 1"
    ]
    assert "pr" not in changes.values_changed
    forward = grown.diff("~3")
    assert [str(span) for span in forward.labels_added] == ["2024-03-02 .. 2024-03-04 (3 steps)"]
    assert not forward.labels_rewritten
    assert grown.diff("main").is_empty


def test_diff_reports_variable_and_attribute_changes(grown):
    """Changes made by any Icechunk user show up too."""
    session = grown.repository.writable_session("main")
    mask = xr.Dataset({"mask": (("lat", "lon"), grown.to_xarray().tas[0].values > 280)})
    mask.attrs = grown.to_xarray().attrs
    mask.to_zarr(session.store, mode="a", consolidated=False)
    group = zarr.open_group(session.store)
    group.attrs["title"] = "renamed cube"
    group["tas"].attrs["units"] = "degC"
    session.commit("edited by hand")

    changes = grown.diff("~1")

    assert changes.variables_added == ["mask"]
    assert changes.variables_changed == {"tas": ["attribute units: 'K' -> 'degC'"]}
    assert changes.attrs_changed == {"title": ("versioncube sample fields", "renamed cube")}
    assert "+ variable mask" in changes.describe()
    assert changes.to_json()["attrs_changed"] == {
        "title": ["versioncube sample fields", "renamed cube"]
    }
