"""Target strings map onto Icechunk storages; options use Icechunk's or fsspec's names."""

from __future__ import annotations

from pathlib import Path

import icechunk
import pytest

from versioncube.errors import TargetError
from versioncube.store.target import parse_target


def test_local_paths_and_file_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_target("cube").uri == str(tmp_path / "cube")
    assert parse_target(tmp_path / "a").kind == "local"
    assert parse_target(f"file://{tmp_path}/b").uri == str(tmp_path / "b")
    assert parse_target("~/c").uri == str(Path.home() / "c")


def test_memory_targets_are_shared_within_the_process():
    first, second = parse_target("memory://shared-name"), parse_target("memory://shared-name")
    assert first.uri == "memory://shared-name"
    assert first.storage() is second.storage()
    assert parse_target("memory://other").storage() is not first.storage()


def test_s3_options_accept_icechunk_and_fsspec_names():
    target = parse_target(
        "s3://bucket/some/prefix",
        {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu"},
         "key": "AK", "secret": "SK"},
    )  # fmt: skip
    assert target.kind == "s3"
    assert target.location == "bucket/some/prefix"
    assert target.options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "region": "eu",
        "access_key_id": "AK",
        "secret_access_key": "SK",
        "allow_http": True,  # implied by an http:// endpoint
    }
    assert isinstance(target.storage(), icechunk.Storage)


def test_gcs_and_azure_storages_are_built():
    gcs = parse_target("gs://bucket/prefix", {"anon": True})
    assert gcs.kind == "gcs" and gcs.options == {"anonymous": True}
    assert "GCS" in repr(gcs.storage())
    azure = parse_target("az://container/prefix", {"account_name": "acct", "account_key": "k"})
    assert azure.options == {"account": "acct", "access_key": "k"}
    assert "Azure" in repr(azure.storage())


@pytest.mark.parametrize(
    ("target", "options", "message"),
    [
        ("ftp://host/x", None, "unknown scheme 'ftp'"),
        ("s3://bucket-only", None, "needs a bucket and a prefix"),
        ("gs://bucket/", None, "needs a bucket and a prefix"),
        ("memory://", None, "give the in-memory repository a name"),
        ("s3://b/p", {"endpoint": "x"}, "unknown storage option 'endpoint' for s3 targets"),
        ("/tmp/x", {"region": "x"}, "unknown storage option 'region' for local targets"),
        ("", None, "no target given"),
    ],
)
def test_bad_targets_are_explained(target, options, message):
    with pytest.raises(TargetError, match=message):
        parse_target(target, options)


def test_azure_needs_an_account():
    with pytest.raises(TargetError, match="storage account name"):
        parse_target("az://container/prefix").storage()
