"""A real dask cluster for the tests and benchmarks, and slices big enough to need one.

:func:`local_cluster` starts what the distributed tests share (a session fixture in
tests/conftest.py wraps it): a ``LocalCluster`` of worker processes, one thread each.
:func:`generated_slice` is a lazily generated slice of any size whose every chunk is computed
from its position alone, so that it costs no memory until written and a cube holding it can be
checked chunk by chunk (:func:`differing_chunks`) without ever loading it whole. The worker
processes import this module to compute the chunks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from versioncube.store.chunk_counter import stored_chunks
from versioncube.store.cluster import WORKER_ENVIRONMENT

#: The start of the labels of generated slices
EPOCH = np.datetime64("2000-01-01T00:00:00", "ns")


@contextlib.contextmanager
def local_cluster(
    workers: int = 2,
    memory_limit: str | int = "1.5GiB",
    *,
    allowed_failures: int = 3,
    set_as_default: bool = True,
) -> Iterator[Any]:
    """A ``LocalCluster`` of ``workers`` processes with one thread each, set up as the one
    ``--workers`` starts (:data:`~versioncube.store.cluster.WORKER_ENVIRONMENT`), and a client
    on it (dask's default scheduler while it is open, unless ``set_as_default`` is false: then
    versioncube reaches it by ``client.scheduler.address`` only); yields the client."""
    import dask
    import distributed

    start: Any = distributed.LocalCluster
    connect: Any = distributed.Client
    settings = {"distributed.scheduler.allowed-failures": allowed_failures}
    with dask.config.set({**settings, **WORKER_ENVIRONMENT}):
        cluster = start(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        client = connect(cluster, set_as_default=set_as_default)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


def _block(block_info: Any = None, *, dtype: str = "float32") -> np.ndarray:
    """One chunk of a generated variable, computed from its position only."""
    info = block_info[None]
    (t0, t1), (y0, y1), (x0, x1) = info["array-location"]
    t = np.arange(t0, t1, dtype="float64")[:, None, None]
    y = np.arange(y0, y1, dtype="float64")[None, :, None]
    x = np.arange(x0, x1, dtype="float64")[None, None, :]
    return (np.sin(t * 0.1 + y * 0.01) * 100 + x * 0.001).astype(dtype)


def generated_values(start: int, steps: int, ny: int, nx: int, chunks: tuple[int, int, int]) -> Any:
    """The dask array of a generated variable over rows ``start .. start + steps`` (the values
    depend on the absolute row, so consecutive slices continue each other)."""
    import dask.array

    array: Any = dask.array
    whole = array.map_blocks(
        _block,
        dtype="float32",
        chunks=array.core.normalize_chunks(chunks, (start + steps, ny, nx)),
        meta=np.empty((0, 0, 0), "float32"),
    )
    return whole[start : start + steps].rechunk(chunks)


def generated_slice(
    start: int,
    steps: int,
    ny: int = 1000,
    nx: int = 1000,
    chunks: tuple[int, int, int] = (1, 500, 500),
    step: str = "1D",
) -> xr.Dataset:
    """A lazily generated slice of ``steps`` time steps of ``ny`` x ``nx`` float32 values
    (``steps * ny * nx * 4`` bytes), labelled from ``EPOCH + start * step``."""
    delta = pd.Timedelta(step).to_timedelta64()
    time = EPOCH + delta * np.arange(start, start + steps)
    return xr.Dataset(
        {"v": (("time", "y", "x"), generated_values(start, steps, ny, nx, chunks))},
        coords={
            "time": time,
            "y": np.arange(ny, dtype="float64"),
            "x": np.arange(nx, dtype="float64"),
        },
    )


def differing_chunks(stored: xr.Dataset, start: int, steps: int) -> int:
    """How many chunks of variable ``v`` over rows ``start .. start + steps`` of ``stored``
    (opened lazily, with its own chunks) differ from the generated values, compared chunk by
    chunk with the threaded scheduler (no chunk is gathered whole anywhere)."""
    import dask
    import dask.array

    array = stored["v"].data[start : start + steps]
    ny, nx = array.shape[1:]
    expected = generated_values(start, steps, ny, nx, array.chunksize).rechunk(array.chunks)
    map_blocks: Any = dask.array.map_blocks
    blocks = map_blocks(
        lambda a, b: np.array([[[int(not np.array_equal(a, b))]]]),
        array,
        expected,
        dtype="int64",
        chunks=tuple((1,) * len(c) for c in array.chunks),
    )
    with dask.config.set(scheduler="threads"):
        return int(blocks.sum().compute())


def kill_one_worker(client: Any, after_chunks: int = 1, timeout: float = 60.0) -> int:
    """SIGKILL one worker process once ``after_chunks`` more chunks have been stored on the
    cluster (or when the timeout is up); its nanny starts a new one. Returns how many chunks
    had been stored since the call when the worker was killed."""
    start = stored_chunks(client)
    wait_for_chunks(client, start + after_chunks, timeout)
    pids: dict[str, int] = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
    return stored_chunks(client) - start


def wait_for_chunks(client: Any, count: int, timeout: float = 60.0, process: Any = None) -> bool:
    """Wait until the cluster has stored ``count`` chunks in all (see
    :func:`~versioncube.store.chunk_counter.stored_chunks`); False on timeout, or when
    ``process`` (a ``subprocess.Popen`` writing them) ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        if stored_chunks(client) >= count:
            return True
        time.sleep(0.05)
    return False
