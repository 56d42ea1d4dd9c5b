"""Running the CLI in tests, and what a user error must look like there.

One definition of "a user error is one ``Error: ...`` line and exit status 1", shared by the
test modules that check it (tests cannot import each other).
"""

from __future__ import annotations

from click.testing import CliRunner, Result

from versioncube.cli import cli


def run_cli(*args: object) -> Result:
    """Run ``versioncube ARGS...`` in-process (stdout and stderr apart)."""
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def assert_one_line_error(result: Result, *expected: str) -> str:
    """Exit status 1, one ``Error: ...`` line on stderr, the last, containing ``expected``, no
    traceback; returns the line."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert sum(line.startswith("Error: ") for line in lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for text in expected:
        assert text in lines[-1], (text, lines[-1])
    return lines[-1]
