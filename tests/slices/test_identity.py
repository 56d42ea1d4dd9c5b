"""Slice identities: absolute paths, URIs, and content fingerprints of datasets."""

from __future__ import annotations

from versioncube.slices.identity import dataset_fingerprint, slice_ref


def test_path_identity_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ref = slice_ref("data/2024-03-01.nc")
    assert ref.identity == str(tmp_path / "data" / "2024-03-01.nc")
    assert ref.name == "2024-03-01.nc"
    assert slice_ref(f"file://{tmp_path}/x.nc").identity == str(tmp_path / "x.nc")


def test_uri_identity_is_the_uri():
    ref = slice_ref("s3://archive/era5/2024-03-01.nc")
    assert ref.identity == "s3://archive/era5/2024-03-01.nc"
    assert ref.name == "2024-03-01.nc"


def test_dataset_fingerprint_follows_content(small_slice):
    a, same = small_slice("2024-01-01"), small_slice("2024-01-01")
    assert dataset_fingerprint(a) == dataset_fingerprint(same)
    assert dataset_fingerprint(a).startswith("xxh3:") and len(dataset_fingerprint(a)) == 37
    assert dataset_fingerprint(a, "sha256").startswith("sha256:")
    assert dataset_fingerprint(a, "sha256") == dataset_fingerprint(same, "sha256")
    changed_value = a.copy(deep=True)
    changed_value["tas"][0, 0, 0] += 1
    assert dataset_fingerprint(changed_value) != dataset_fingerprint(a)
    assert dataset_fingerprint(a.assign_attrs(x=1)) != dataset_fingerprint(a)
    assert dataset_fingerprint(small_slice("2024-01-02")) != dataset_fingerprint(a)


def test_dask_backed_dataset_is_fingerprinted_without_computing(small_slice):
    lazy = small_slice("2024-01-01").chunk({"lat": 2})
    assert dataset_fingerprint(lazy) == dataset_fingerprint(lazy)
