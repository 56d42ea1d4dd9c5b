"""The ``versioncube`` command line: parse, call the core, render. No logic lives here.

Only click is imported at start-up, so ``versioncube --help`` is instant; each command imports
what it needs when it runs.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from versioncube._version import __version__
from versioncube.errors import VersionCubeError

_TRACEBACK_KEY = "versioncube.traceback"
_MAX_SKIPPED_LISTED = 5  # more skipped slices than this are summarised in one line


class _Group(click.Group):
    """The one CLI error boundary: VersionCubeError -> one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VersionCubeError as error:
            if ctx.meta.get(_TRACEBACK_KEY):
                raise
            click.echo(f"Error: {error}", err=True)
            ctx.exit(1)


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


def _print_config_reference(ctx: click.Context, _param: click.Parameter, value: str) -> None:
    if not value or ctx.resilient_parsing:
        return
    from versioncube.config_reference import reference

    click.echo(reference(value))  # type: ignore[arg-type]
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


@cli.command(short_help="Append slices to the cube, one commit per slice.")
@click.argument("slices", nargs=-1, metavar="SLICE...")
@click.option(
    "-t",
    "--target",
    metavar="TARGET",
    help="The cube: a path, memory://NAME, s3://BUCKET/PREFIX, gs://..., az://... "
    "(config key target_dir).",
)
@click.option(
    "-c",
    "--config",
    "config_files",
    metavar="CONFIG",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A YAML or JSON configuration file; repeat to merge several in order.",
)
@click.option(
    "-b",
    "--branch",
    metavar="BRANCH",
    help="The branch to append to (config key target_branch, default main).",
)
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
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
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
    """
    _quiet_icechunk()
    from versioncube.config import load_config
    from versioncube.cube import append_slices

    overrides = {
        "target_dir": target,
        "target_branch": branch,
        "append_dim": append_dim,
        "dry_run": dry_run,
        "force_new": force_new,
    }
    settings = load_config(
        list(config_files), **{key: value for key, value in overrides.items() if value is not None}
    )
    if progress is None:
        progress = not as_json and len(slices) > 1 and sys.stderr.isatty()
    with _Progress(len(slices), progress) as bar:
        try:
            summary = append_slices(slices, settings, on_result=bar.advance)
        except VersionCubeError:
            if bar.results:  # the slices before the failing one are committed: say so
                click.echo(bar.summary_so_far(), err=True)
            raise
    if as_json:
        click.echo(json.dumps(_jsonable(summary), indent=2))
        return
    skipped = [result for result in summary.results if result.status == "skipped"]
    list_skipped = verbose or len(skipped) <= _MAX_SKIPPED_LISTED
    for result in summary.results:
        if result.status == "would append" or (result.status == "skipped" and list_skipped):
            click.echo(result.describe())
    if not list_skipped:
        click.echo(
            f"skipped {len(skipped)} slices already in the cube: {skipped[0].slice_name} .. "
            f"{skipped[-1].slice_name} (--verbose lists each)"
        )
    click.echo(str(summary))


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

    def summary_so_far(self) -> str:
        appended = sum(result.status == "appended" for result in self.results)
        skipped = len(self.results) - appended
        return f"appended {appended}, skipped {skipped} before the error"

    def __exit__(self, *exc_info: Any) -> None:
        if self.enabled and self.in_terminal and self.results:
            click.echo(err=True)  # end the redrawn line


def _jsonable(summary: Any) -> dict[str, Any]:
    import dataclasses

    return {
        "appended": summary.appended,
        "skipped": summary.skipped,
        "dry_run": summary.dry_run,
        "elapsed_seconds": round(summary.elapsed, 3),
        "results": [dataclasses.asdict(result) for result in summary.results],
    }


def _quiet_icechunk() -> None:
    """Keep Icechunk's Rust warnings off the terminal unless the user asked for them."""
    os.environ.setdefault("ICECHUNK_LOG", "error")


def main() -> None:
    """Entry point of the ``versioncube`` script."""
    cli()
