"""The dask cluster a run writes on: a setting, never versioncube's own process pool.

A run writes on a cluster when one is configured (:class:`ClusterSettings`):

- ``dask_scheduler`` (``--scheduler``): the address of a running scheduler, connected to with
  ``distributed.Client(address)``; a hand-started ``dask scheduler``/``dask worker`` pair,
  a dask-jobqueue cluster and a LocalCluster are all reached the same way;
- ``dask_workers`` (``--workers``): a ``LocalCluster`` of that many worker processes (one
  thread each, ``memory_limit`` each, :data:`WORKER_ENVIRONMENT`) started for the run and
  closed after it;
- neither, in Python: the active ``distributed.Client``, if there is one (left open).

Without any of them nothing changes: dask-backed slices are written by dask's default
(threaded) scheduler in the client process.

Workers on other machines cannot see the client's local disk. :meth:`Cluster.check_sees`
therefore asks every worker to read a token file the client writes into the repository's
folder, and refuses the run before anything is written when one cannot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from versioncube.errors import ClusterError, ConfigError
from versioncube.store.target import Target

#: A ``distributed.Client`` (distributed ships no type hints)
Client = Any

logger = logging.getLogger(__name__)

#: What a worker process holds besides the chunks it writes: measured 155-160 MB for a worker
#: that imported versioncube, Icechunk, Zarr and xarray and wrote tiny chunks (benchmark X),
#: with some margin.
WORKER_BASE_BYTES = 192 * 2**20
#: Copies of its largest chunk a worker thread holds at once: as computed (or read), as
#: encoded, and compressed (measured: 182-198 MB peak with 4 MB chunks, benchmark X).
CHUNK_COPIES = 3


#: The dask settings of the worker processes of a ``LocalCluster`` versioncube starts. dask's
#: nannies set ``MALLOC_TRIM_THRESHOLD_=65536`` in their workers, which also turns off glibc's
#: adaptive mmap threshold: every array of more than 128 kB is then mapped afresh and its pages
#: faulted in and zeroed, and unmapped when freed. Appending archive files (three 720 x 1440
#: fields, zlib) on 2 workers, the workers spent 160 ms of CPU per file with it and 125 ms
#: without it (benchmark X, docs/distributed.md). Without it, glibc keeps what it freed for the
#: next slice, up to its own adaptive threshold (at most 64 MB).
WORKER_ENVIRONMENT = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def worker_environment() -> Iterator[None]:
    """Start worker processes inside this with :data:`WORKER_ENVIRONMENT`."""
    import dask

    with dask.config.set(WORKER_ENVIRONMENT):
        yield


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """Where a run's writes go (see the module docstring)."""

    scheduler: str | None = None
    workers: int | None = None
    memory_limit: int | None = None  # bytes per worker; None: the workers' own limit

    @classmethod
    def of(
        cls, scheduler: str | None, workers: int | None, memory_limit: str | int | None
    ) -> ClusterSettings:
        return cls(scheduler, workers, parse_memory(memory_limit))

    @property
    def configured(self) -> bool:
        return self.scheduler is not None or self.workers is not None


def parse_memory(value: str | int | None) -> int | None:
    """``"2GiB"``, ``"500MB"`` or a number of bytes as bytes (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    from dask.utils import parse_bytes

    try:
        parsed = int(parse_bytes(value))
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"memory_limit {value!r} is not a size: use bytes or a size such as 2GiB, 500MB"
        ) from error
    if parsed <= 0:
        raise ConfigError(f"memory_limit {value!r} must be greater than 0")
    return parsed


@dataclasses.dataclass
class Cluster:
    """A connected dask client for a run, and what versioncube needs to know of its workers."""

    client: Client
    started: bool  # versioncube started it (a LocalCluster) and closes it after the run
    memory_limit: int | None  # the configured limit, else the smallest worker's (None: none)
    _seen: set[str] = dataclasses.field(default_factory=set)

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link)
        except Exception:  # no dashboard (bokeh missing, or disabled)
            return None

    def workers(self) -> dict[str, dict[str, Any]]:
        """Address -> the scheduler's facts about each worker (nthreads, memory_limit, ...)."""
        info: dict[str, dict[str, Any]] = self.client.scheduler_info(n_workers=-1)["workers"]
        return info

    def threads_per_worker(self) -> int:
        """The most threads any worker runs (what peak memory per worker multiplies by)."""
        return max((int(w.get("nthreads", 1)) for w in self.workers().values()), default=1)

    def total_threads(self) -> int:
        return sum(int(w.get("nthreads", 1)) for w in self.workers().values()) or 1

    def check_sees(self, folder: str, uri: str) -> None:
        """Refuse a local target that some worker cannot see: each worker must read the token
        the client writes into ``folder`` (the repository's folder, or the folder it will be
        created in). Checked once per folder and run."""
        if folder in self._seen:
            return
        token = uuid.uuid4().hex
        path = Path(folder) / f".versioncube-probe-{token}"
        try:
            path.write_text(token)
        except OSError as error:
            raise ClusterError(f"cannot write a probe file into {folder}: {error}") from error
        try:
            answers: dict[str, str | None] = self.client.run(_read_token, str(path))
        finally:
            path.unlink(missing_ok=True)
        blind = sorted(address for address, seen in answers.items() if seen != token)
        if blind:
            raise ClusterError(
                f"the local target {uri} is not visible to {len(blind)} of {len(answers)} dask "
                f"workers (e.g. {blind[0]}): they run on other machines or in other folders; "
                "nothing was written. Use an object store (s3://, gs://, az://) as the target, "
                "or a filesystem mounted at the same path on every worker"
            )
        self._seen.add(folder)


def check_reachable(cluster: Cluster, target: Target) -> None:
    """Refuse a target the cluster's workers cannot write to: an in-memory one (it lives in
    this process), or a local folder some worker does not see (:meth:`Cluster.check_sees`)."""
    if target.kind == "memory":
        raise ClusterError(
            f"the target {target.uri} lives in this process: dask workers cannot write to it; "
            "use a folder (on one machine) or an object store"
        )
    if target.kind == "local":
        folder = Path(target.location)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        cluster.check_sees(str(folder), target.uri)


def _read_token(path: str) -> str | None:
    """Runs on a worker: the probe's content as this worker sees it (None: not there)."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def active_client() -> Client | None:
    """The active ``distributed.Client`` of this process, if any (never imports distributed
    when nothing has)."""
    if "distributed" not in sys.modules:
        return None
    import distributed

    default_client: Any = distributed.default_client
    try:
        return default_client()
    except ValueError:
        return None


@contextlib.contextmanager
def connected(settings: ClusterSettings, announce: Any = None) -> Iterator[Cluster | None]:
    """The run's cluster (see the module docstring), or None: nothing configured and no
    client active. ``announce`` is called with a line for people (the dashboard link of a
    cluster versioncube starts)."""
    if settings.scheduler is not None:
        client = _client_at(settings.scheduler)
        try:
            yield Cluster(client, False, settings.memory_limit or _worker_limit(client))
        finally:
            client.close()
        return
    if settings.workers is not None:
        with _local_cluster(settings) as cluster:
            if announce is not None:
                announce(
                    f"started a local dask cluster of {settings.workers} workers; dashboard: "
                    f"{cluster.dashboard_link}"
                )
            yield cluster
        return
    client = active_client()
    if client is None:
        yield None
        return
    yield Cluster(client, False, settings.memory_limit or _worker_limit(client))


#: How long a run waits for the scheduler at ``dask_scheduler`` to answer, unless dask's
#: configuration says otherwise (key :data:`CONNECT_TIMEOUT_KEY`, e.g. the environment variable
#: ``DASK_VERSIONCUBE__SCHEDULER_TIMEOUT=30s``; the tests shorten it).
CONNECT_TIMEOUT = "10s"
CONNECT_TIMEOUT_KEY = "versioncube.scheduler-timeout"


def _client_at(address: str) -> Client:
    import dask
    import distributed

    connect: Any = distributed.Client
    timeout = dask.config.get(CONNECT_TIMEOUT_KEY, CONNECT_TIMEOUT)
    try:
        return connect(address, timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"no dask scheduler answers at {address} ({error}): start one (dask scheduler; "
            "dask worker ADDRESS) or check the address"
        ) from error


@contextlib.contextmanager
def _local_cluster(settings: ClusterSettings) -> Iterator[Cluster]:
    import distributed

    assert settings.workers is not None
    start: Any = distributed.LocalCluster
    connect: Any = distributed.Client
    limit: str | int = settings.memory_limit if settings.memory_limit is not None else "auto"
    # worker processes are spawned (distributed's default): Icechunk does not survive fork()
    with worker_environment():
        local = start(
            n_workers=settings.workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=limit,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    try:
        client = connect(local, set_as_default=True)
        try:
            yield Cluster(client, True, settings.memory_limit or _worker_limit(client))
        finally:
            client.close()
    finally:
        local.close()


def _worker_limit(client: Client) -> int | None:
    limits = [
        int(w["memory_limit"])
        for w in client.scheduler_info(n_workers=-1)["workers"].values()
        if w.get("memory_limit")
    ]
    return min(limits) if limits else None
