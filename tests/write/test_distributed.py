"""Distributed writes on a real dask LocalCluster (2 worker processes, 1 thread each): a big
lazy slice is one commit, many files with ``parallel`` are one commit each in order, and a
killed worker or client never leaves a partial commit."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.errors import ClusterError, ConfigError
from versioncube.samples import write_daily_files
from versioncube.store.cluster import ClusterSettings, connected
from versioncube.testing import commits, tip
from versioncube.testing.cluster import (
    differing_chunks,
    generated_slice,
    kill_one_worker,
    stored_chunks,
    wait_for_chunks,
)
from versioncube.testing.real_data import AMBIGUOUS_REFERENCE_DATE

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(f"ignore:{AMBIGUOUS_REFERENCE_DATE}")]

#: one time step per chunk, 1000 x 1000 float32 (4 MB) chunks
CHUNKS = (1, 1000, 1000)
ENCODING = {"variables": {"v": {"encoding": {"chunks": list(CHUNKS)}}}}
#: smaller slices for the failure tests: 500 x 500 float32 (1 MB) chunks
SMALL = {"ny": 500, "nx": 500, "chunks": (1, 500, 500)}
SMALL_ENCODING = {"variables": {"v": {"encoding": {"chunks": [1, 500, 500]}}}}
#: open_mfdataset: only what runs along time is concatenated
MINIMAL = {"data_vars": "minimal", "coords": "minimal", "compat": "override"}


def on(dask_cluster, **settings):
    """A run's settings that write on the session's cluster."""
    return {"dask_scheduler": dask_cluster.scheduler.address, **settings}


def test_a_1gb_lazy_slice_is_one_commit_written_by_the_workers(dask_cluster, tmp_path):
    target = tmp_path / "cube"
    cube = open_cube(target, config={**ENCODING, **on(dask_cluster)})
    cube.append(generated_slice(0, 2, chunks=CHUNKS).load())  # the cube, from memory
    before = tip(cube)
    lines: list[str] = []
    progress: list[tuple[int, int]] = []
    big = generated_slice(2, 250, chunks=(5, 1000, 1000))  # 1.0 GB, never held anywhere

    summary = cube.append_all(
        [big], announce=lines.append, on_chunks=lambda done, total: progress.append((done, total))
    )

    assert summary.appended == 1
    assert len(commits(cube)) == 2 and commits(cube)[1].id == before
    stored = cube.to_xarray()
    assert stored.sizes["time"] == 252
    assert differing_chunks(stored, 0, 252) == 0
    assert any("peak memory per worker about" in line for line in lines)
    assert progress[0] == (0, 50) and progress[-1] == (50, 50)  # one task per dask chunk
    assert cube.verify().ok


def test_a_slice_whose_chunks_exceed_memory_limit_is_refused(dask_cluster, tmp_path):
    cube = open_cube(tmp_path / "cube", config=on(dask_cluster, memory_limit="300MiB"))
    cube.append(generated_slice(0, 1, chunks=CHUNKS).load())
    before = tip(cube)
    huge_chunks = generated_slice(1, 40, chunks=(40, 1000, 1000))  # 160 MB dask chunks

    with pytest.raises(ClusterError, match=r"memory_limit 300\.0 MiB.*smaller dask chunks"):
        cube.append(huge_chunks)
    assert tip(cube) == before


def test_an_active_client_is_used_and_a_multi_file_slice_is_one_commit(
    dask_cluster, eofs_steps, tmp_path
):
    from distributed import Client

    paths = eofs_steps["sst_ndjfm_anom"]
    target = tmp_path / "cube"
    versioncube.append(paths[:5], target_dir=str(target))
    lazy = xr.open_mfdataset(paths[5:], chunks={}, combine="by_coords", **MINIMAL)

    before = stored_chunks(dask_cluster)
    with Client(dask_cluster.scheduler.address):
        assert versioncube.append(lazy, target_dir=str(target)) == 1
    after = stored_chunks(dask_cluster)
    lazy.close()

    cube = open_cube(target)
    assert len(commits(cube)) == 6
    assert after > before  # the chunks went through the cluster
    with xr.open_mfdataset(paths, combine="by_coords", **MINIMAL) as expected:
        xr.testing.assert_equal(cube.to_xarray().load(), expected.load())


def test_parallel_appends_equal_the_serial_run_one_commit_per_file(dask_cluster, tmp_path, caplog):
    files = write_daily_files(tmp_path / "files", "2024-01-01", 200, shape=(4, 8))
    parallel = tmp_path / "parallel"

    with caplog.at_level(logging.DEBUG, logger="versioncube.write.parallel"):
        summary = versioncube.append_slices(
            files, target_dir=str(parallel), **on(dask_cluster, parallel=True)
        )

    assert summary.appended == 200
    by_workers = [r for r in caplog.records if "written by a worker" in r.getMessage()]
    assert len(by_workers) >= 190  # all but the first slice and any fallback
    # what a serial run gives (tests/write/test_append.py): the files concatenated
    with xr.open_mfdataset(files, combine="by_coords", **MINIMAL) as serial:
        xr.testing.assert_identical(open_cube(parallel).to_xarray().load(), serial.load())
    history = commits(open_cube(parallel))
    assert len(history) == 200
    names = [s.message.splitlines()[0].split(":")[0] for s in reversed(history)]
    assert names == [f"{'create' if i == 0 else 'append'} {f.name}" for i, f in enumerate(files)]
    # a re-run skips every file: exactly once
    again = versioncube.append_slices(
        files, target_dir=str(parallel), **on(dask_cluster, parallel=True)
    )
    assert (again.appended, again.skipped) == (0, 200)


def test_workers_start_a_local_cluster_for_the_run(tmp_path):
    """``--workers 2 --parallel``: a LocalCluster of versioncube's own, announced with its
    dashboard, gives the serial result, one commit per file."""
    files = write_daily_files(tmp_path / "files", "2024-01-01", 12, shape=(4, 8))
    target = tmp_path / "cube"

    result = CliRunner().invoke(
        cli, ["append", "--target", str(target), "--workers", "2", "--parallel", *map(str, files)]
    )

    assert result.exit_code == 0, result.output
    assert "started a local dask cluster of 2 workers; dashboard: http" in result.output
    with xr.open_mfdataset(files, combine="by_coords", **MINIMAL) as serial:
        xr.testing.assert_identical(open_cube(target).to_xarray().load(), serial.load())
    assert len(commits(open_cube(target))) == 12


def test_the_workers_versioncube_starts_keep_glibc_adaptive_memory_reuse(dask_cluster):
    """dask's nannies set MALLOC_TRIM_THRESHOLD_, which makes every large array a fresh mapping;
    versioncube's clusters (and the tests', set up the same way) leave it unset."""
    with connected(ClusterSettings(workers=1)) as cluster:
        assert cluster is not None and cluster.started
        seen = cluster.client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert list(seen.values()) == [None]
    seen = dask_cluster.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert list(seen.values()) == [None, None]


def test_parallel_stops_at_a_bad_file_after_committing_the_ones_before(dask_cluster, tmp_path):
    files = write_daily_files(tmp_path / "files", "2024-01-01", 8, shape=(4, 8))
    bad = write_daily_files(tmp_path / "bad", "2024-01-06", 1, shape=(5, 8))[0]
    files[5] = bad  # another grid
    target = str(tmp_path / "cube")

    with pytest.raises(versioncube.SliceValidationError, match="2024-01-06.nc") as failure:
        versioncube.append(files, target_dir=target, **on(dask_cluster, parallel=True))

    assert failure.value.summary.appended == 5
    assert len(commits(open_cube(target))) == 5


def test_parallel_needs_a_cluster(tmp_path, daily_files):
    with pytest.raises(ConfigError, match="parallel appends need a dask cluster"):
        versioncube.append(daily_files, target_dir=str(tmp_path / "cube"), parallel=True)


def test_a_worker_killed_mid_write_leaves_a_complete_commit_or_none(dask_cluster, tmp_path):
    cube = open_cube(tmp_path / "cube", config={**SMALL_ENCODING, **on(dask_cluster)})
    cube.append(generated_slice(0, 1, **SMALL).load())
    before = tip(cube)
    killed_after: list[int] = []
    killer = threading.Thread(target=lambda: killed_after.append(kill_one_worker(dask_cluster, 5)))
    killer.start()
    try:
        cube.append(generated_slice(1, 100, **SMALL))
        committed = True
    except Exception:  # dask gave up: nothing may be committed
        committed = False
    finally:
        killer.join()
        dask_cluster.wait_for_workers(2, timeout=60)

    assert killed_after and killed_after[0] < 100  # killed mid-write
    if committed:
        assert len(commits(cube)) == 2
        assert differing_chunks(cube.to_xarray(), 0, 101) == 0
    else:
        assert tip(cube) == before


CLIENT = textwrap.dedent(
    """
    import sys
    import versioncube
    from versioncube.testing.cluster import generated_slice
    versioncube.append(
        generated_slice(1, 40, ny=500, nx=500, chunks=(1, 500, 500)),
        target_dir=sys.argv[1], dask_scheduler=sys.argv[2],
        target_storage_options=eval(sys.argv[3]),
    )
    """
)


def kill_client_mid_write(dask_cluster, target: str, storage_options: dict) -> None:
    """Run an append of a 40 MB slice in a client process and SIGKILL it mid-write."""
    env = {**os.environ, "ICECHUNK_LOG": "error"}
    start = stored_chunks(dask_cluster)
    process = subprocess.Popen(
        [sys.executable, "-c", CLIENT, target, dask_cluster.scheduler.address,
         repr(storage_options)],
        env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        written = wait_for_chunks(dask_cluster, start + 5, timeout=60, process=process)
        assert written, "no chunk was written"
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()


def stray_chunks(cube):
    """What ``gc --dry-run`` reports once the killed client's chunks are older than its
    cut-off: asked again for a few seconds, since an object store's listing and modification
    times can trail the workers' last writes."""
    for _ in range(6):
        time.sleep(1.1)
        stray = cube.gc("1s", dry_run=True, force=True)
        if stray.chunks_deleted:
            break
    return stray


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_killed_client_leaves_the_tip_then_a_rerun_completes(
    where, dask_cluster, tmp_path, request
):
    if where == "s3":
        target, storage_options = request.getfixturevalue("s3_target")
    else:
        target, storage_options = str(tmp_path / "cube"), {}
    config = {**SMALL_ENCODING, **on(dask_cluster), "target_storage_options": storage_options}
    cube = open_cube(target, storage_options=storage_options, config=config)
    cube.append(generated_slice(0, 1, **SMALL).load())
    before = tip(cube)

    kill_client_mid_write(dask_cluster, target, storage_options)

    cube = open_cube(target, storage_options=storage_options, config=config)
    assert tip(cube) == before  # nothing half-written reached the branch
    stray = stray_chunks(cube)
    assert stray.chunks_deleted > 0  # the killed client's chunks, reported
    cube.append(generated_slice(1, 40, **SMALL))
    assert len(commits(cube)) == 2
    assert differing_chunks(cube.to_xarray(), 0, 41) == 0
    time.sleep(1.1)
    removed = cube.gc("1s", force=True)
    assert removed.chunks_deleted >= stray.chunks_deleted
    assert cube.verify().ok


def test_parallel_on_s3(dask_cluster, s3_target, tmp_path):
    target, storage_options = s3_target
    files = write_daily_files(tmp_path / "files", "2024-01-01", 20, shape=(4, 8))
    settings = on(dask_cluster, target_storage_options=storage_options)

    summary = versioncube.append_slices(files, target_dir=target, parallel=True, **settings)

    assert summary.appended == 20
    cube = open_cube(target, storage_options=storage_options)
    assert len(commits(cube)) == 20
    serial = tmp_path / "serial"
    versioncube.append(files, target_dir=str(serial))
    xr.testing.assert_identical(cube.to_xarray().load(), open_cube(serial).to_xarray().load())


def test_in_memory_targets_are_refused_on_a_cluster(dask_cluster, memory_target):
    with pytest.raises(ClusterError, match="lives in this process"):
        versioncube.append(
            generated_slice(0, 2, ny=10, nx=10, chunks=(1, 10, 10)),
            target_dir=memory_target,
            **on(dask_cluster),
        )


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs unshare and root to give a worker its own view of the disk",
)
def test_a_worker_that_cannot_see_a_local_target_is_refused_before_writing(tmp_path):
    """A hand-started scheduler, and a worker whose view of the target's folder is an empty
    tmpfs (another machine's disk)."""
    from versioncube.testing.servers import free_port

    folder = tmp_path / "cubes"
    folder.mkdir()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "ICECHUNK_LOG": "error"}
    scheduler = subprocess.Popen(
        [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        ["unshare", "-m", "sh", "-c",
         f"mount -t tmpfs none {folder} && exec {bin_dir / 'dask'} worker {address} "
         "--nthreads 1 --no-dashboard --no-nanny"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        target = folder / "cube"
        with pytest.raises(ClusterError, match="not visible to 1 of 1 dask workers"):
            versioncube.append(
                generated_slice(0, 2, ny=10, nx=10, chunks=(1, 10, 10)),
                target_dir=str(target),
                dask_scheduler=address,
            )
        assert not target.exists()
    finally:
        for process in (worker, scheduler):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_lazy_slice_of_a_pyramid_is_written_by_the_workers_in_one_commit(dask_cluster, tmp_path):
    levels = {"levels": {"num_levels": 2, "tile_size": 250, "agg_methods": "mean"}}
    first = generated_slice(0, 2, ny=500, nx=500, chunks=(1, 500, 500))
    lazy = generated_slice(2, 6, ny=500, nx=500, chunks=(1, 250, 250))
    on_cluster, threaded = tmp_path / "cluster", tmp_path / "threaded"
    stored = []
    for target, settings in ((on_cluster, on(dask_cluster)), (threaded, {})):
        cube = open_cube(target, config={**levels, **settings})
        cube.append(first.load())
        stored.append(stored_chunks(dask_cluster))
        cube.append(lazy)
        stored.append(stored_chunks(dask_cluster))
        assert len(commits(cube)) == 2
    assert stored[1] > stored[0]  # the levels were written through the workers
    assert stored[3] == stored[2]  # the threaded run did not
    built, expected = open_cube(on_cluster), open_cube(threaded)
    for level in range(2):
        xr.testing.assert_identical(
            built.to_xarray(level=level).load(), expected.to_xarray(level=level).load()
        )
