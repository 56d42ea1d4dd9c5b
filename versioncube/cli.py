"""The ``versioncube`` command line: parse, call the core, render. No logic lives here.

Only click is imported at start-up, so ``versioncube --help`` is instant; each command imports
what it needs when it runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import click

from versioncube._version import __version__
from versioncube.errors import VersionCubeError

if TYPE_CHECKING:
    from versioncube.cube import Cube

_TRACEBACK_KEY = "versioncube.traceback"
_JSON_KEY = "versioncube.json"
_CREDENTIALS_KEY = "versioncube.virtual_credentials"
INTERRUPTED_EXIT = 130  # the shell's code for a program stopped by Ctrl-C


class _Group(click.Group):
    """The one CLI error boundary: VersionCubeError -> one line on stderr and exit status 1
    (with --json, also a JSON error object on stdout); Ctrl-C -> what was done, exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VersionCubeError as error:
            if ctx.meta.get(_TRACEBACK_KEY):
                raise
            summary = error.summary
            if ctx.meta.get(_JSON_KEY):
                payload = {"error": {"type": type(error).__name__, "message": str(error)}}
                if summary is not None:
                    payload["summary"] = summary.to_json()
                click.echo(json.dumps(payload, indent=2))
            elif summary is not None and summary.dry_run:
                click.echo(summary.describe(), err=True)  # every slice's verdict
            elif summary is not None and summary.results:
                click.echo(f"{summary.tally()} before the error", err=True)  # what is committed
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as stop:
            if ctx.meta.get(_TRACEBACK_KEY):
                raise
            summary = getattr(stop, "summary", None)
            done = f"{summary.tally()} before the interruption; " if summary is not None else ""
            click.echo(
                f"\ninterrupted: {done}every commit made is complete and kept; run the same "
                "command again to go on",
                err=True,
            )
            ctx.exit(INTERRUPTED_EXIT)


def _set_traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_TRACEBACK_KEY] = True


_traceback_option = click.option(
    "--traceback",
    is_flag=True,
    expose_value=False,
    callback=_set_traceback,
    help="Show the full Python traceback when an error occurs.",
)


def _print_config_reference(
    ctx: click.Context, _param: click.Parameter, value: Literal["md", "json"] | None
) -> None:
    if not value or ctx.resilient_parsing:
        return
    from versioncube.config.reference import reference

    click.echo(reference(value))
    ctx.exit()


_help_config_option = click.option(
    "--help-config",
    type=click.Choice(["md", "json"]),
    expose_value=False,
    is_eager=True,
    callback=_print_config_reference,
    help="Print the configuration reference (Markdown or JSON Schema) and exit.",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="versioncube")
@_help_config_option
@_traceback_option
def cli() -> None:
    """Grow Zarr datacubes slice by slice, with version control built in.

    Every slice append is one Icechunk commit: appends are all-or-nothing, a failed run is
    resumed by running the same command again, and every earlier version stays readable.
    """


def _remember_credentials(
    ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> None:
    if values:
        _quiet_icechunk()  # before icechunk is imported
        from versioncube.store.containers import parse_credentials_option

        given = ctx.meta.setdefault(_CREDENTIALS_KEY, {})
        for value in values:
            given.update(parse_credentials_option(value))


def _cube_options(command: Any) -> Any:
    """-t/--target, -c/--config, -b/--branch and --virtual-credentials: how every command
    finds its cube and reads it."""
    options = [
        click.option(
            "-t",
            "--target",
            metavar="TARGET",
            help="The cube: a path, memory://NAME, s3://BUCKET/PREFIX, gs://..., az://... "
            "(config key target_dir).",
        ),
        click.option(
            "-c",
            "--config",
            "config_files",
            metavar="CONFIG",
            multiple=True,
            type=click.Path(dir_okay=False),
            help="A YAML or JSON configuration file (target, storage options, ...); repeat to "
            "merge several in order.",
        ),
        click.option(
            "-b",
            "--branch",
            metavar="BRANCH",
            help="The branch (config key target_branch, default main).",
        ),
        click.option(
            "--virtual-credentials",
            metavar="PREFIX=KIND|JSON",
            multiple=True,
            expose_value=False,
            callback=_remember_credentials,
            help="Authorise reading the files a cube of virtual slices references: "
            "PREFIX=local|env|anonymous, or a JSON object {PREFIX: KIND or S3 keys} "
            "(config key virtual_credentials; repeatable).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_JSON_KEY] = True
    return value


def _json_option(command: Any) -> Any:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_remember_json,
        help="Print the result as JSON (and errors as a JSON object).",
    )(command)


def _run_commit_options(command: Any) -> Any:
    """``-m/--message`` and ``--metadata`` of the verbs that make a commit per slice."""
    command = click.option(
        "--metadata",
        "metadata",
        metavar="KEY=VALUE",
        multiple=True,
        help="Store KEY=VALUE in every commit's metadata, beside versioncube's record "
        "(repeatable).",
    )(command)
    return click.option(
        "-m",
        "--message",
        metavar="TEXT",
        help="The commit message of every commit of this run (default: what each commit did).",
    )(command)


def _settings(config_files: tuple[str, ...], **flags: Any) -> Any:
    """The configuration from files plus the flags that were given."""
    from versioncube.config import load_config

    return load_config(
        list(config_files), **{key: value for key, value in flags.items() if value is not None}
    )


def _cube(target: str | None, config_files: tuple[str, ...], branch: str | None) -> Cube:
    return _cube_for(_settings(config_files, target_dir=target, target_branch=branch))


def _cube_for(settings: Any) -> Cube:
    """The cube the settings name; says how to name one when they name none."""
    _quiet_icechunk()
    from versioncube.cube import cube_from_config

    if not settings.target_dir:
        from versioncube.errors import ConfigError

        raise ConfigError("no target given: use -t/--target, or target_dir in a -c config file")
    given = click.get_current_context().meta.get(_CREDENTIALS_KEY)
    if given:
        import dataclasses

        merged = {**settings.virtual_credentials, **given}
        settings = dataclasses.replace(settings, virtual_credentials=merged)
    if str(settings.target_dir).startswith("memory://"):
        click.echo(
            f"warning: {settings.target_dir} lives in this process only: the cube is gone "
            "when the command ends (use a folder or an object store to keep it)",
            err=True,
        )
    return cube_from_config(settings)


def _show(result: Any, as_json: bool, **describe_options: Any) -> None:
    """How every command prints its result (see versioncube.display.results): JSON for
    scripts, text for people."""
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(result.describe(**describe_options))


@cli.command(short_help="Append slices to the cube, one commit per slice.")
@click.argument("slices", nargs=-1, metavar="SLICE...")
@_cube_options
@click.option(
    "--append-dim",
    metavar="DIM",
    help="The dimension to append along (default: the cube's own, or time).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    default=None,
    help="Validate every slice and report what would be committed; write nothing.",
)
@click.option(
    "--force-new",
    is_flag=True,
    default=None,
    help="Start the cube afresh with the first slice, as a new commit (the old content stays "
    "in the history).",
)
@click.option(
    "--virtual",
    is_flag=True,
    default=None,
    help="Append each file as references to its chunks instead of copying it (NetCDF3, "
    "NetCDF4/HDF5, GRIB; local or s3://); see docs/virtual.md.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Write on the dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786 "
    "(config key dask_scheduler); see docs/distributed.md.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Start a local dask cluster of N worker processes for the run and write on it "
    "(config key dask_workers); its dashboard link is printed.",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="Memory per dask worker, e.g. 2GiB (config key memory_limit): the limit of the "
    "workers started by --workers, and what big slices' chunks are checked against.",
)
@click.option(
    "--parallel",
    is_flag=True,
    default=None,
    help="On a dask cluster, open, check and write the next slices on the workers while "
    "this process commits them in order, one commit per slice (config key parallel).",
)
@_run_commit_options
@_json_option
@click.option("-v", "--verbose", is_flag=True, help="List every skipped slice.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar across slices (default: when stderr is a terminal).",
)
@_help_config_option
@_traceback_option
def append(
    slices: tuple[str, ...],
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    append_dim: str | None,
    dry_run: bool | None,
    force_new: bool | None,
    virtual: bool | None,
    scheduler: str | None,
    workers: int | None,
    memory_limit: str | None,
    parallel: bool | None,
    message: str | None,
    metadata: tuple[str, ...],
    as_json: bool,
    verbose: bool,
    progress: bool | None,
) -> None:
    """Append SLICE... (NetCDF or Zarr paths or URIs) to the cube, one commit per slice.

    Slices already in the branch's history are skipped, so running the same command again after
    a failure appends exactly what is missing. A slice that does not fit the cube stops the run
    with an error naming it; the cube stays at the last good commit. Configuration files use
    zappend's keys (--help-config md lists them); the cube remembers its outline, so later runs
    need only the target. With a slice_source configured, each SLICE is its argument.

    \b
    Examples:
      versioncube append -t cube.icechunk data/2024-03-*.nc
      versioncube append -c zappend-config.yaml -t cube.icechunk data/*.nc
      versioncube append --virtual -t cube.icechunk archive/*.nc
      versioncube append --workers 2 --parallel -t cube.icechunk data/*.nc
      versioncube append --scheduler tcp://head:8786 -t s3://bucket/cube big.zarr
    """
    settings = _settings(
        config_files,
        target_dir=target,
        target_branch=branch,
        append_dim=append_dim,
        dry_run=dry_run,
        force_new=force_new,
        virtual=virtual,
        dask_scheduler=scheduler,
        dask_workers=workers,
        memory_limit=memory_limit,
        parallel=parallel,
    )
    cube = _cube_for(settings)
    options = _commit_options(cube, message, metadata)
    # the chunks a cluster writes of a big slice: shown in a terminal, even for one slice
    show_chunks = progress if progress is not None else not as_json and sys.stderr.isatty()
    if progress is None:
        progress = not as_json and len(slices) > 1 and sys.stderr.isatty()
    with _Progress(len(slices), progress) as bar, _StopAfterCommit() as stop:

        def advance(result: Any) -> None:
            bar.advance(result)
            stop.check()

        summary = cube.append_all(
            slices,
            on_result=advance,
            options=options,
            announce=lambda line: click.echo(line, err=True),
            on_chunks=bar.chunks if show_chunks else None,
        )
    _show(summary, as_json, **({} if as_json else {"verbose": verbose}))


@cli.command(short_help="Write slices by their labels: upsert, time_series, replace, insert.")
@click.argument("slices", nargs=-1, metavar="SLICE...")
@_cube_options
@click.option(
    "--mode",
    type=click.Choice(["append", "upsert", "time_series", "replace", "insert"]),
    help="How each slice's labels are placed (config key write_mode, default append): upsert "
    "(overwrite labels the cube has, insert the others in order), time_series (replace every "
    "label within the slice's first..last), replace (existing labels only), insert (new "
    "labels only).",
)
@_run_commit_options
@_json_option
@_traceback_option
def write(
    slices: tuple[str, ...],
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    mode: str | None,
    message: str | None,
    metadata: tuple[str, ...],
    as_json: bool,
) -> None:
    """Write SLICE... into the cube by their append labels, one commit per slice.

    Re-issued files come in with --mode replace (their labels must all be in the cube) or
    --mode upsert (new labels are inserted in order too); a late file for a gap with --mode
    insert; --mode time_series replaces the whole window first..last of each slice. Inserts
    and deletes of whole chunks move chunk references instead of copying data. A slice the
    cube holds with the same content is skipped. See docs/updates.md.

    \b
    Examples:
      versioncube write -t cube.icechunk --mode upsert data/2024-03-0[1-7].nc
      versioncube write -t cube.icechunk --mode insert late/2024-03-05.nc
    """
    settings = _settings(config_files, target_dir=target, target_branch=branch, write_mode=mode)
    cube = _cube_for(settings)
    options = _commit_options(cube, message, metadata)
    results = []
    for item in slices:
        result = cube.write(item, options=options)
        results.append(result)
        if not as_json:
            click.echo(result.describe())
    if as_json:
        click.echo(json.dumps([result.to_json() for result in results], indent=2))


@cli.command(short_help="Remove a range of append labels, in one commit.")
@_cube_options
@click.option(
    "--labels",
    "labels",
    metavar="FIRST..LAST",
    required=True,
    help="The labels to remove, inclusive (e.g. 2024-03-03..2024-03-05), or one label.",
)
@click.option("-m", "--message", metavar="TEXT", help="The commit message.")
@_json_option
@_traceback_option
def delete(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    labels: str,
    message: str | None,
    as_json: bool,
) -> None:
    """Remove every append label within FIRST..LAST (and its rows, in every variable) in one
    commit. Whole chunks are moved, not copied. Earlier versions keep them: `rollback --to
    main~1` brings them back. A range holding no label commits nothing."""
    cube = _cube(target, config_files, branch)
    result = cube.delete(labels, options=_commit_options(cube, message, ()))
    _show(result, as_json)


@cli.command(short_help="List the branch's commits, newest first.")
@_cube_options
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most N commits.")
@click.option("--at", "version", metavar="REF", help="Start from this version, not the tip.")
@click.option("--since", metavar="DATE", help="Only commits made at or after DATE (ISO 8601).")
@click.option("--until", metavar="DATE", help="Only commits made at or before DATE (ISO 8601).")
@_json_option
def log(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    limit: int | None,
    version: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """List the commits of the branch, newest first: short id, time, operation, slice, append
    labels and tags. --at REF starts from a version instead of the tip: a tag, branch, REF~N,
    snapshot id or ISO date-time; DATE is an ISO 8601 date or date-time (UTC unless it says
    otherwise). Page through a long history with -n and --until (the time of the oldest commit
    shown): only the commits shown are read."""
    cube = _cube(target, config_files, branch)
    _show(cube.log(limit, version=version, since=since, until=until), as_json)


@cli.command(short_help="Tag a version as an immutable release.")
@click.argument("name")
@_cube_options
@click.option("--at", "version", metavar="REF", help="The version to tag (default: the tip).")
@click.option("-m", "--message", default="", help="Why this version is a release.")
@_json_option
def tag(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    name: str,
    version: str | None,
    message: str,
    as_json: bool,
) -> None:
    """Tag a version (default: the branch tip) as NAME. Tags are immutable: a name is never
    moved or reused, so a tag always reads back the same cube."""
    info = _cube(target, config_files, branch).tag(name, at=version, message=message)
    _show(info, as_json)


@cli.command(short_help="List the tags with their messages.")
@_cube_options
@_json_option
def tags(
    target: str | None, config_files: tuple[str, ...], branch: str | None, as_json: bool
) -> None:
    """List the tags, oldest first, with snapshot, time of tagging and message."""
    found = _cube(target, config_files, branch).tags()
    _show(found, as_json)


@cli.command(short_help="Move the branch back (or forward) to a version.")
@_cube_options
@click.option("--to", "version", required=True, metavar="REF", help="The version to return to.")
@_json_option
def rollback(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    version: str,
    as_json: bool,
) -> None:
    """Move the branch to REF with a compare-and-swap on its tip, and print what was discarded.

    Nothing is deleted: discarded commits stay readable by snapshot id until gc removes them,
    and `rollback --to <discarded snapshot id>` undoes the rollback. If another writer commits
    meanwhile, the rollback fails and changes nothing."""
    result = _cube(target, config_files, branch).rollback(version)
    _show(result, as_json)


@cli.command(short_help="List commits, branch resets and tags (the operations log).")
@_cube_options
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most N entries.")
@_json_option
def reflog(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List every change of the repository, newest first: commits, branch resets (rollbacks,
    promotions), branch and tag creations, expirations and garbage collections."""
    entries = _cube(target, config_files, branch).reflog(limit)
    _show(entries, as_json)


def _plot_option(what: str) -> Callable[[Any], Any]:
    return click.option(
        "--plot",
        "plot_file",
        metavar="FILE",
        type=click.Path(dir_okay=False, writable=True),
        help=f"Also draw {what} into FILE (PNG, SVG or PDF, by its extension); needs "
        "pip install 'versioncube[plot]'.",
    )


def _save_plot(figure: Any, plot_file: str | None) -> None:
    """Write a picture, and say where (on stderr: stdout stays the result)."""
    if plot_file:
        figure.savefig(plot_file, dpi=110)
        click.echo(f"wrote {plot_file}", err=True)


@cli.command(short_help="Summarise a version: dims, variables, labels, size.")
@_cube_options
@click.option("--at", "version", metavar="REF", help="The version to show (default: the tip).")
@click.option(
    "--storage",
    is_flag=True,
    help="Also measure what all versions store (reads every version's manifests).",
)
@_plot_option("the history leading to the version (commits along the labels, gaps)")
@_json_option
def show(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    version: str | None,
    storage: bool,
    plot_file: str | None,
    as_json: bool,
) -> None:
    """Show a version of the cube: snapshot and the refs on it, dims, variables, append-label
    range, uncompressed size and its chunks; with --storage, the bytes all versions store
    together (and the folder on local disk). --plot FILE.png draws the history leading to it:
    a bar per commit over the labels it wrote, coloured by operation, tags and branch heads
    marked, gaps in the labels shaded."""
    cube = _cube(target, config_files, branch)
    info = cube.info(version, storage=storage)
    if plot_file:
        _save_plot(cube.plot_history(version=version), plot_file)
    _show(info, as_json)


@cli.command(short_help="List the present and missing steps of the append labels.")
@_cube_options
@click.option(
    "--step",
    metavar="STEP",
    help="The expected step: 1D, 6h, 1W, 1M (months), 1Y (years), daily, monthly, a pandas "
    "frequency (MS), or a number for numeric labels (default: the labels' usual spacing).",
)
@click.option("--at", "version", metavar="REF", help="The version to look at (default: the tip).")
@_plot_option("the present and missing steps")
@_json_option
def coverage(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    step: str | None,
    version: str | None,
    plot_file: str | None,
    as_json: bool,
) -> None:
    """List which steps between the first and last append label the cube holds, and the gaps:
    runs of present and missing steps. Each label counts for the step it falls in (a label at
    1948-01-15T12:00 counts for the year 1948 with --step 1Y)."""
    found = _cube(target, config_files, branch).coverage(_number_or_text(step), version=version)
    if plot_file:
        _save_plot(found.plot(), plot_file)
    _show(found, as_json)


def _number_or_text(value: str | None) -> str | float | None:
    """A step as given: a number for numeric labels, else text."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


@cli.command(short_help="Show what changed between two versions.")
@click.argument("from_version", metavar="FROM")
@click.argument("to_version", metavar="[TO]", required=False)
@_cube_options
@_plot_option("the label ranges added, removed and rewritten")
@_json_option
def diff(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    from_version: str,
    to_version: str | None,
    plot_file: str | None,
    as_json: bool,
) -> None:
    """Show what changed from version FROM to version TO (default: the branch tip): variables
    added, removed or changed, append labels added, removed or rewritten, attribute changes."""
    changes = _cube(target, config_files, branch).diff(from_version, to_version)
    if plot_file:
        _save_plot(changes.plot(), plot_file)
    _show(changes, as_json)


#: What ``branch`` hands its subcommands: the target, config files and branch options.
_CubeOptions = tuple[str | None, tuple[str, ...], str | None]


@cli.group(cls=_Group, short_help="List, create or delete branches.")
@_cube_options
@click.pass_context
def branch(
    ctx: click.Context, target: str | None, config_files: tuple[str, ...], branch: str | None
) -> None:
    """List, create or delete branches. A branch stages appends apart from main; `promote`
    then fast-forwards main to it."""
    ctx.obj = (target, config_files, branch)


@branch.command("list")
@_json_option
@click.pass_obj
def branch_list(options: _CubeOptions, as_json: bool) -> None:
    """List the branches with their tips, main first."""
    found = _cube(*options).branches()
    _show(found, as_json)


@branch.command("create")
@click.argument("name")
@click.option("--at", "version", metavar="REF", help="Where to start it (default: the tip).")
@click.pass_obj
def branch_create(options: _CubeOptions, name: str, version: str | None) -> None:
    """Create branch NAME at a version (default: the tip of the current branch)."""
    info = _cube(*options).create_branch(name, at=version)
    click.echo(f"created {info.describe()}")


@branch.command("delete")
@click.argument("name")
@click.pass_obj
def branch_delete(options: _CubeOptions, name: str) -> None:
    """Delete branch NAME (never main). Its commits stay readable by snapshot id until gc."""
    click.echo(_cube(*options).delete_branch(name).describe())


@cli.command(short_help="Fast-forward main (or --into) to a branch.")
@click.argument("name")
@_cube_options
@click.option("--into", default="main", show_default=True, help="The branch to move forward.")
@_json_option
def promote(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    name: str,
    into: str,
    as_json: bool,
) -> None:
    """Fast-forward branch --into (default main) to the tip of branch NAME, when --into has not
    moved since NAME started from it; otherwise refuse and change nothing."""
    result = _cube(target, config_files, branch).promote(name, into=into)
    _show(result, as_json)


@cli.command(short_help="Expire old snapshots and delete unreachable data.")
@_cube_options
@click.option("--older-than", required=True, metavar="DURATION", help="e.g. 30d, 12h, 90min, 2w.")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option("--force", is_flag=True, help="Allow a DURATION below the safe minimum (1 day).")
@_json_option
def gc(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    older_than: str,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Expire snapshots older than DURATION (never a tagged one or a branch tip), then delete
    the objects no branch or tag reaches any more (such as rolled-back commits), and print what
    was removed. This is the only command that deletes data."""
    result = _cube(target, config_files, branch).gc(older_than, dry_run=dry_run, force=force)
    _show(result, as_json)


@cli.command(short_help="Write a version as a plain Zarr v2 or v3 store.")
@click.argument("destination", metavar="DEST")
@_cube_options
@click.option("--at", "version", metavar="REF", help="The version to export (default: the tip).")
@click.option(
    "--zarr-format",
    type=click.Choice(["2", "3"]),
    default="3",
    show_default=True,
    help="Zarr format of the copy (2: what zappend wrote, for xr.open_zarr readers).",
)
@click.option("--consolidated", is_flag=True, help="Write consolidated metadata as well.")
@click.option("--overwrite", is_flag=True, help="Replace what DEST holds (default: refuse).")
@_json_option
def export(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    destination: str,
    version: str | None,
    zarr_format: str,
    consolidated: bool,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write a version of the cube (default: the branch tip) to DEST, a path or fsspec URL, as
    a plain Zarr store that any Zarr reader opens without Icechunk: the same variables, chunks,
    encodings and attributes. A DEST that holds anything is refused unless --overwrite.

    \b
    Examples:
      versioncube export -t cube.icechunk --at v2024.03 --zarr-format 2 --consolidated out.zarr
    """
    result = _cube(target, config_files, branch).export(
        destination,
        version=version,
        zarr_format=2 if zarr_format == "2" else 3,
        consolidated=consolidated,
        overwrite=overwrite,
    )
    _show(result, as_json)


class _StopAfterCommit:
    """Ctrl-C during a run: the slice being appended is finished (its commit completes), then
    the run stops; a second Ctrl-C stops at once (the slice in progress is not committed)."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _StopAfterCommit:
        import signal
        import threading

        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, _signum: int, _frame: Any) -> None:
        import signal

        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl-C stops now
        click.echo("\nstopping after the current slice (Ctrl-C again to stop now)", err=True)

    def check(self) -> None:
        """Stop the run here, between two slices, when Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: Any) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Progress:
    """A progress line across slices on stderr: a redrawn bar in a terminal, else a line each."""

    WIDTH = 30

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled
        self.results: list[Any] = []
        self.in_terminal = sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        return self

    def advance(self, result: Any) -> None:
        self.results.append(result)
        if not self.enabled:
            return
        done = len(self.results)
        counter = f"{done}/{self.total}"
        if self.in_terminal:
            filled = self.WIDTH * done // max(self.total, 1)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(
                f"\rappending [{bar}] {counter} {result.slice_name}\x1b[K", err=True, nl=False
            )
        else:
            click.echo(f"appending {counter} {result.slice_name}: {result.status}", err=True)

    def chunks(self, done: int, total: int) -> None:
        """The chunks of a big slice written so far by a dask cluster's workers."""
        if self.in_terminal:
            filled = self.WIDTH * done // max(total, 1)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            click.echo(f"\rwriting chunks [{bar}] {done}/{total}\x1b[K", err=True, nl=False)
            if done == total:
                click.echo(err=True)
        elif done == total or done == 0:
            click.echo(f"writing chunks {done}/{total}", err=True)

    def __exit__(self, *exc_info: Any) -> None:
        if self.enabled and self.in_terminal and self.results:
            click.echo(err=True)  # end the redrawn line


@cli.command(short_help="Check a version for damage; exit 1 if any.")
@_cube_options
@click.option("--at", "version", metavar="REF", help="The version to check (default: the tip).")
@_json_option
@click.pass_context
def verify(
    ctx: click.Context,
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    version: str | None,
    as_json: bool,
) -> None:
    """Check a version of the cube: it opens as one dataset, its append labels strictly
    increase, each commit's recorded label range matches the data, and every chunk reads back.
    Also reports the orphaned objects that gc would remove. Exits with status 1 on damage."""
    report = _cube(target, config_files, branch).verify(version)
    _show(report, as_json)
    if not report.ok:
        ctx.exit(1)


@cli.command(short_help="Copy referenced (virtual) chunks into the cube, in one commit.")
@_cube_options
@click.option("--from", "start", metavar="LABEL", help="First append label to copy.")
@click.option("--to", "stop", metavar="LABEL", help="Last append label to copy.")
@click.option("-m", "--message", metavar="TEXT", help="The commit message.")
@_json_option
def materialize(
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    start: str | None,
    stop: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Copy the chunks the branch tip references in archive files (virtual slices) into the
    cube, all of them or those of the labels --from .. --to, in one commit: those rows then no
    longer depend on the files. Earlier versions keep their references."""
    cube = _cube(target, config_files, branch)
    result = cube.materialize(start, stop, options=_commit_options(cube, message, ()))
    _show(result, as_json)


def _schema_change_options(command: Any) -> Any:
    """``--group``, ``-m/--message`` and ``--json`` of add-variable and drop-variable."""
    command = _json_option(command)
    command = click.option("-m", "--message", metavar="TEXT", help="The commit message.")(command)
    return click.option(
        "--group",
        metavar="PATH",
        help="On a tree cube: the node to change, such as /ocean (default the root). A "
        "pyramid's levels are all changed together.",
    )(command)


@cli.command("add-variable", short_help="Add a variable over the whole record, in one commit.")
@click.argument("name", metavar="NAME")
@click.argument("slices", nargs=-1, required=True, metavar="SLICE...")
@_cube_options
@click.option(
    "--fill-value",
    type=float,
    metavar="VALUE",
    help="What the steps no slice gives hold, stored as the variable's _FillValue (read as "
    "missing); default NaN (integers need one).",
)
@_schema_change_options
def add_variable(
    name: str,
    slices: tuple[str, ...],
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    fill_value: float | None,
    group: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Add variable NAME to every step of the cube, in one commit: the steps the SLICEs hold
    (files with NAME and the append labels, matched by label) get their values, all others the
    fill value. Checked and encoded as appended slices are (variables.NAME of the
    configuration applies). A variable without the append dimension is written once. Earlier
    versions keep the old schema. On a pyramid every level gets it (downsampled as appends
    do); on a tree, the node --group."""
    cube = _cube(target, config_files, branch)
    result = cube.add_variable(
        name,
        list(slices),
        fill_value=fill_value,
        group=group,
        options=_commit_options(cube, message, ()),
    )
    _show(result, as_json)


@cli.command("drop-variable", short_help="Remove a variable from the cube, in one commit.")
@click.argument("name", metavar="NAME")
@_cube_options
@_schema_change_options
def drop_variable(
    name: str,
    target: str | None,
    config_files: tuple[str, ...],
    branch: str | None,
    group: str | None,
    message: str | None,
    as_json: bool,
) -> None:
    """Remove variable NAME from the cube, in one commit; earlier versions keep it (until gc).
    The append coordinate, and coordinates other variables need, are refused. On a pyramid it
    leaves every level; on a tree, the node --group."""
    cube = _cube(target, config_files, branch)
    options = _commit_options(cube, message, ())
    _show(cube.drop_variable(name, group=group, options=options), as_json)


def _commit_options(cube: Any, message: str | None, metadata: tuple[str, ...]) -> Any:
    """The run's CommitOptions from --message and --metadata KEY=VALUE (None: the defaults)."""
    if message is None and not metadata:
        return None
    from versioncube.store.commit import CommitOptions

    pairs = {}
    for item in metadata:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
        pairs[key] = value
    return CommitOptions(message=message, metadata=pairs, retry=cube.append_retry)


def _quiet_icechunk() -> None:
    """Keep Icechunk's Rust warnings off the terminal unless the user asked for them."""
    os.environ.setdefault("ICECHUNK_LOG", "error")


def main() -> None:
    """Entry point of the ``versioncube`` script."""
    cli()
