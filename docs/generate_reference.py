"""Write docs/cli.md and docs/configuration.md from the code's own declarations.

The CLI reference comes from each command's --help, the configuration reference from the one
declaration of every setting (versioncube.config.Config). `make docs` runs this script, and
tests/test_docs.py fails when either page differs from what it writes, so the reference pages
cannot drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from versioncube.cli import cli
from versioncube.config import Config

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
    parts = [
        "# Configuration reference",
        "",
        "Generated from `versioncube.config.Config` by `make docs`; a test fails when it is out",
        "of date. A configuration is a dict, a YAML or JSON file, or a list of these merged in",
        "order (mappings merge key by key, everything else is replaced); keyword arguments and",
        "command-line flags override it. `${VAR}` in a file is replaced by the environment",
        "variable `VAR` (an unset variable is an error). Unknown keys and wrong types are",
        "rejected with the key's name.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, type_name, default, help_text in Config.settings():
        parts.append(f"| `{name}` | {type_name} | `{json.dumps(default)}` | {help_text} |")
    return "\n".join(parts) + "\n"


PAGES = {"cli.md": cli_reference, "configuration.md": configuration_reference}

if __name__ == "__main__":
    for page, render in PAGES.items():
        (DOCS / page).write_text(render())
        print(f"wrote {DOCS / page}")
