"""Target strings map onto Icechunk storages; options use Icechunk's or fsspec's names. Google
Cloud Storage is tested here only up to its emulator, which Icechunk cannot keep a cube on."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from pathlib import Path

import icechunk
import pytest

from versioncube import open_cube
from versioncube.errors import TargetError
from versioncube.store.target import parse_target
from versioncube.testing.gcs_emulator import GCS_BUCKET


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


def test_emulator_options_go_into_the_object_store_config():
    azure = parse_target(
        "az://cubes/cube",
        {"account_name": "devstoreaccount1", "account_key": "a2V5",
         "endpoint_url": "http://127.0.0.1:10000/devstoreaccount1"},
    )  # fmt: skip
    assert azure.options == {
        "account": "devstoreaccount1",
        "access_key": "a2V5",
        "config": {"endpoint": "http://127.0.0.1:10000/devstoreaccount1", "allow_http": "true"},
    }
    emulator = parse_target("az://cubes/cube", {"use_emulator": True})
    assert emulator.options == {"config": {"use_emulator": "true"}}
    assert "account: devstoreaccount1" in repr(emulator.storage())  # the emulator's account
    gcs = parse_target("gs://cubes/cube", {"endpoint_url": "http://127.0.0.1:4443", "anon": True})
    assert gcs.options == {
        "anonymous": True,
        "config": {"google_base_url": "http://127.0.0.1:4443"},
    }
    assert "GCS" in repr(gcs.storage())


def test_an_option_given_twice_differently_is_refused():
    with pytest.raises(TargetError, match="'endpoint' is given twice, with different values"):
        parse_target(
            "az://c/p",
            {"account": "a", "endpoint": "http://a", "config": {"endpoint": "http://b"}},
        )
    with pytest.raises(TargetError, match="'config' must be a mapping"):
        parse_target("gs://c/p", {"config": "google_base_url=http://a"})


# -- Google Cloud Storage: its emulator reached, and what it lacks (docs/targets.md) ------------


@pytest.mark.slow  # the GCS emulator, a server process
def test_a_gcs_target_reaches_a_custom_endpoint(gcs_emulator):
    prefix = f"reach{uuid.uuid4().hex}"  # no characters that the client percent-encodes
    cube = open_cube(f"gs://{GCS_BUCKET}/{prefix}", storage_options=gcs_emulator.options)

    assert not cube.exists()
    assert f"GET /{GCS_BUCKET}/{prefix}%2F" in gcs_emulator.log.read_text()  # asked there


def _gcs_request(server, method: str, path: str, body: bytes = b"", **headers: str):
    request = urllib.request.Request(
        f"{server.url}{path}", data=body or None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow  # the GCS emulator, a server process
def test_the_gcs_emulator_lacks_what_icechunk_needs(gcs_emulator):
    """Icechunk's object store speaks GCS's XML API; the emulator serves little of it."""
    key = f"/{GCS_BUCKET}/lacks-{uuid.uuid4().hex}/repo"
    create_only = {"x-goog-if-generation-match": "0"}  # write only if the object is new

    assert _gcs_request(gcs_emulator, "GET", f"/{GCS_BUCKET}?list-type=2")[0] == 501
    assert _gcs_request(gcs_emulator, "PUT", key, b"first", **create_only)[0] == 200
    assert _gcs_request(gcs_emulator, "PUT", key, b"second", **create_only)[0] == 200  # not 412
    assert _gcs_request(gcs_emulator, "GET", key) == (200, b"second")  # the first was lost
    assert _gcs_request(gcs_emulator, "HEAD", key)[0] == 501
    assert _gcs_request(gcs_emulator, "DELETE", key)[0] == 501
