"""info: the one-screen summary of a version."""

from __future__ import annotations

from versioncube.testing import commits


def test_info_summarises_a_version(grown):
    grown.tag("v1", at="~1")
    info = grown.info("v1")

    assert info.snapshot_id == commits(grown)[1].id
    assert info.refs == ["tag:v1"]
    assert info.dims == {"time": 4, "lat": 6, "lon": 12}
    assert info.variables["tas"] == "(time, lat, lon) float32"
    assert str(info.first_label)[:10] == "2024-03-01" and str(info.last_label)[:10] == "2024-03-04"
    assert info.uncompressed_bytes == grown.to_xarray("v1").nbytes
    # tas and pr per day; lat, lon, time; a ledger bucket per slice (none shares one here)
    assert info.chunk_refs == 4 * 2 + 3 + 4 and info.manifests >= 1
    assert info.chunk_bytes is None and info.disk_bytes is None  # measured when asked for
    assert "time       2024-03-01 .. 2024-03-04" in info.describe()
    measured = grown.info("v1", storage=True)
    assert measured.chunk_bytes > 0 and measured.disk_bytes is None  # in memory: no folder
    assert "of chunks, all versions" in measured.describe()
