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
    assert info.chunk_bytes > 0 and info.disk_bytes is None
    assert "time       2024-03-01 .. 2024-03-04" in info.describe()
