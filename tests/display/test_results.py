"""Every result a verb returns reads three ways: describe() (the CLI's text), to_json() (the
CLI's --json) and _repr_html_() (notebooks); the CLI prints exactly those."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

import versioncube
from versioncube import open_cube
from versioncube.cli import cli
from versioncube.display.results import Displayable
from versioncube.samples import sample_slice

VOID_TAGS = {"br", "hr", "img", "meta", "input", "col", "wbr"}


class _Checker(HTMLParser):
    """Checks that tags nest and close, and collects the text."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _html_text(markup: str) -> str:
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert not checker.open, f"unclosed tags: {checker.open}"
    return " ".join(checker.text)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, object]:
    """One of every result type, from a cube on local disk (gc needs a real folder)."""
    target = str(tmp_path_factory.mktemp("results") / "cube")
    days = [sample_slice(f"2024-02-{day:02d}", shape=(3, 6)) for day in range(1, 6)]
    summary = versioncube.append_slices(days[:3], target_dir=target)
    cube = open_cube(target)
    found: dict[str, object] = {"run summary": summary, "append result": summary.results[0]}
    found["tag"] = cube.tag("v1", message="three days")
    found["branch"] = cube.create_branch("dev")
    open_cube(target, branch="dev").append(days[3])
    found["promote"] = cube.promote("dev")
    found["rollback"] = cube.rollback("v1")
    found["dry run summary"] = versioncube.append_slices(days[3:], target_dir=target, dry_run=True)
    found["log"] = cube.log()
    found["tags"] = cube.tags()
    found["branches"] = cube.branches()
    found["reflog"] = cube.reflog()
    found["info"] = cube.info()
    found["diff"] = cube.diff("main~1")
    found["verify"] = cube.verify()
    found["gc"] = cube.gc("1d", dry_run=True)
    found["branch deleted"] = cube.delete_branch("dev")
    found["materialize"] = cube.materialize()
    found["export"] = cube.export(tmp_path_factory.mktemp("export") / "copy.zarr")
    found["skipped"] = cube.append(days[0])
    found["no differences"] = cube.diff("main")
    found["coverage"] = cube.coverage("1D")
    found["history"] = cube.history()
    found["value difference"] = cube.diff_values("v1", "main", variable="tas", label="2024-02-01")
    found["cube"] = cube
    found["empty cube"] = open_cube(f"{target}-not-yet")
    return found


KINDS = [
    "run summary", "dry run summary", "append result", "skipped", "tag", "branch", "promote",
    "rollback", "log", "tags", "branches", "reflog", "info", "diff", "no differences", "verify",
    "gc", "branch deleted", "materialize", "export", "coverage", "history", "value difference",
    "cube", "empty cube",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_every_result_renders_as_text_json_and_html(results, kind):
    result = results[kind]
    assert isinstance(result, Displayable)

    text = result.describe()
    assert text.strip() and str(result) == text if "cube" not in kind else text.strip()

    payload = result.to_json()
    encoded = json.dumps(payload, allow_nan=False)  # standard JSON: no NaN, no objects
    assert json.loads(encoded) == payload
    assert isinstance(payload, dict | list)

    shown = _html_text(result._repr_html_())
    assert shown.strip()


#: What a fact looks like in a result's text: a snapshot id (or its first 12 characters), a
#: date, a time of day, a number (counts, sizes, rows).
FACT = re.compile(r"[0-9A-Z]{12,20}|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|\d+(?:\.\d+)?")


@pytest.mark.parametrize("kind", KINDS)
def test_html_carries_every_fact_of_the_text(results, kind):
    """Every id, date, time and number the CLI's text says is in the HTML too (as text, not
    hidden in attributes)."""
    result = results[kind]
    text, shown = result.describe(), _html_text(result._repr_html_())
    facts = FACT.findall(text)
    assert facts or kind in ("empty cube", "materialize")
    missing = [fact for fact in facts if fact not in shown]
    assert not missing, f"{kind}: {missing} not in the HTML: {shown}"


@pytest.mark.parametrize(
    ("kind", "facts"),
    [
        ("tag", lambda r: [r.name, r.short_id]),
        ("branch", lambda r: [r.name]),
        ("log", lambda r: [entry.short_id for entry in r] + ["append", "create"]),
        ("info", lambda r: [r.snapshot_id, "2024-02-01"]),
        ("dry run summary", lambda r: [result.slice_name for result in r.results]),
        ("rollback", lambda r: [r.previous_tip[:12], r.new_tip[:12]]),
        ("verify", lambda r: [r.snapshot_id, "ok: no damage found"]),
        ("empty cube", lambda r: ["no data yet"]),
        ("diff", lambda r: ["+ time 2024-02-03 (1 step)"]),
        ("gc", lambda r: ["cut-off", "would remove"]),
        ("branch deleted", lambda r: ["dev", r.snapshot_id]),
        ("export", lambda r: [r.destination, "Zarr v3"]),
        ("skipped", lambda r: ["skipped", r.snapshot_id]),
        ("coverage", lambda r: ["3 of 3 steps present", "present"]),
        ("history", lambda r: ["create 1", "append 2", "tag v1", "branch main"]),
        ("value difference", lambda r: ["tas at time 2024-02-01", "0 of 18 cells differ"]),
    ],
)
def test_html_and_text_carry_the_same_facts(results, kind, facts):
    result = results[kind]
    text, shown = result.describe(), _html_text(result._repr_html_())
    for fact in facts(result):
        assert fact in text and fact in shown, fact


def test_a_cube_shows_what_show_says_and_its_tags(results):
    """A Cube in a notebook: where it is (its own text), what ``versioncube show`` says about
    its tip, and its tags."""
    cube = results["cube"]
    shown = _html_text(cube._repr_html_())
    for fact in [*FACT.findall(cube.describe()), *FACT.findall(cube.info().describe())]:
        assert fact in shown, fact
    for fact in [cube.target.uri, "branch main", "tas", "pr", "time: 3", "2024-02-01", "v1"]:
        assert fact in shown, fact
    assert "<details open" in cube._repr_html_()  # sections fold, without JavaScript


def test_promote_says_promoted_and_rollback_says_discarded(results):
    assert "promoted 1 commit" in results["promote"].describe()
    assert "discarded 1 commit" in results["rollback"].describe()


def test_dry_run_summary_counts_what_it_would_append(results):
    summary = results["dry run summary"]
    assert summary.tally() == "would append 2, skipped 0"
    assert summary.to_json()["dry_run"] is True


@pytest.mark.parametrize(
    ("arguments", "method"),
    [
        (["log"], lambda cube: cube.log()),
        (["tags"], lambda cube: cube.tags()),
        (["branch", "list"], lambda cube: cube.branches()),
        (["show"], lambda cube: cube.info()),
        (["verify"], lambda cube: cube.verify()),
        (["diff", "main~1"], lambda cube: cube.diff("main~1")),
    ],
)
def test_the_cli_prints_exactly_the_result_forms(results, arguments, method):
    cube = results["cube"]
    runner = CliRunner()
    target = cube.target.uri
    options = ["-t", target]
    as_text = runner.invoke(cli, [arguments[0], *options, *arguments[1:]])
    as_json = runner.invoke(cli, [arguments[0], *options, *arguments[1:], "--json"])
    result = method(cube)

    assert as_text.exit_code == 0, as_text.output
    assert as_text.stdout.rstrip("\n") == result.describe()
    found, expected = json.loads(as_json.stdout), result.to_json()
    if arguments == ["verify"]:  # counts of orphaned objects may differ between two looks
        found.pop("orphaned_objects"), expected.pop("orphaned_objects")
        found.pop("orphaned_bytes"), expected.pop("orphaned_bytes")
    assert found == expected
