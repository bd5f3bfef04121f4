"""The README stays true to the tree: its links land on headings, its layout names every module and folder, its
parameter table and diagnostics list name what the code has."""

from __future__ import annotations

import re
from pathlib import Path

from lightglue_ros.health import COUNTERS
from lightglue_ros.params import PARAMS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _outside_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _section(heading: str) -> str:
    """The text under ``heading`` (a line of the README) up to the next heading of its level or above."""
    level = heading.split(" ")[0]
    start = README.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", _outside_code(README[start + 1 :]))]
    body = README[start + 1 :]
    return body[: ends[0]] if ends else body


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_internal_link_lands_on_a_heading():
    headings = {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", _outside_code(README), flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= headings, sorted(links - headings)


def test_the_layout_names_every_module_script_and_top_level_folder():
    layout = _section("### Layout")
    modules = [p.stem for p in (REPO / "lightglue_ros").glob("*.py") if p.stem != "__init__"]
    tools = [p.stem for p in (REPO / "tools" / "lightglue_ros_tools").glob("*.py") if p.stem != "__init__"]
    scripts = [p.name for p in (REPO / "tools").glob("*.sh")]
    folders = [f"{p.name}/" for p in REPO.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "test"]
    folders = [f for f in folders if not f.endswith(".egg-info/") and f not in ("build/", "install/", "log/", "out/")]
    missing = [name for name in [*modules, *tools, *scripts, *folders, ".ci/", "test/"] if f"`{name}" not in layout]
    assert not missing, missing


def test_the_parameter_table_and_the_diagnostics_list_name_what_the_code_has():
    table = _section("## Parameters")
    assert [spec.name for spec in PARAMS if f"`{spec.name}`" not in table] == []
    diagnostics = _section("### Diagnostics")
    assert [counter for counter in COUNTERS if f"`{counter}`" not in diagnostics] == []


def test_the_quick_start_has_the_two_commands():
    quick_start = _section("## Quick start (fresh machine, no ROS needed)")
    commands = re.findall(r"^(tools/\S+)", quick_start, flags=re.M)
    assert commands == ["tools/run_demo.sh", "tools/run_tests.sh"]
