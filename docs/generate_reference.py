"""Write docs/cli.md and docs/configuration.md from the code's own declarations.

The CLI reference comes from each command's --help, the configuration reference from the one
declaration of every setting (versioncube.config.Config). `make docs` runs this script, and
tests/test_docs.py fails when either page differs from what it writes, so the reference pages
cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path

from versioncube.cli import cli
from versioncube.config_reference import reference

DOCS = Path(__file__).parent
WIDTH = 90


def cli_reference() -> str:
    parts = [
        "# Command-line reference",
        "",
        "Generated from the commands' `--help` by `make docs`; a test fails when it is out of",
        "date. Every command exits with status 1 and one `Error: ...` line on a user error;",
        "`--traceback` shows the Python traceback instead.",
    ]
    root = cli.make_context("versioncube", [], resilient_parsing=True, terminal_width=WIDTH)
    parts += ["", "## versioncube", "", "```text", cli.get_help(root), "```"]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        context = command.make_context(
            name, [], parent=root, resilient_parsing=True, terminal_width=WIDTH
        )
        parts += ["", f"## versioncube {name}", "", "```text", command.get_help(context), "```"]
    return "\n".join(parts) + "\n"


def configuration_reference() -> str:
    return reference("md")


PAGES = {"cli.md": cli_reference, "configuration.md": configuration_reference}

if __name__ == "__main__":
    for page, render in PAGES.items():
        (DOCS / page).write_text(render())
        print(f"wrote {DOCS / page}")
