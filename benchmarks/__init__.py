"""Benchmarks of versioncube against xarray, Icechunk and zappend (issue 6).

``python -m benchmarks`` (``make bench``) runs them and writes ``benchmarks/results/latest.md``
and ``latest.json``. One module per benchmark, each with ``run(context) -> Section``:

- A :mod:`benchmarks.throughput`: MB/s appending 100 slices of 720 x 1440;
- B :mod:`benchmarks.growth`: ms per append over 1000 tiny slices, first 100 vs last 100;
- C :mod:`benchmarks.versus_zappend`: A and B with zappend 0.8 in its own venv;
- D :mod:`benchmarks.memory`: peak RSS appending a 2 GB dask-backed slice;
- E :mod:`benchmarks.reads`: opening the first version vs the head; ``versioncube --help``;
- P :mod:`benchmarks.phases`: where the time of each versioncube append goes;
- W :mod:`benchmarks.writers`: appends/s with 1 and 4 concurrent writer processes, local and S3.

Shared: :mod:`benchmarks.common` (sizes, timing, machine), :mod:`benchmarks.workloads` (slices
and the append loop of each tool), :mod:`benchmarks.report` (ratios, goals, the report files).
"""
