"""The docs cannot rot unnoticed: links resolve, and the commands they show parse.

Every relative link and image in README.md and docs/*.md must name a file or folder of
the repository (and an ``#anchor`` into a Markdown file a heading of it); every
``cnnport ...`` line inside a fenced code block must be accepted by the real argument
parser: the command exists, its flags exist, their choices are accepted. Placeholders
written in capitals (MODEL.onnx, DIR) parse like any other argument.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    return {_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for m in _LINK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page: Path):
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link} (no heading #{anchor})")
    assert not broken, f"{page.name}: broken links {broken}"


def _command_lines(page: Path) -> list[str]:
    """``cnnport ...`` lines of the fenced blocks, continuation lines joined."""
    lines = []
    for block in _FENCE.findall(page.read_text()):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            line = re.sub(r"^(\S*/)?(\.venv/bin/)?cnnport\b", "cnnport", line)
            if line.startswith("cnnport ") or line == "cnnport":
                lines.append(line.split(" #")[0].split(" &&")[0].split(" |")[0].strip())
    return lines


def _all_command_lines() -> list[tuple[str, str]]:
    return [(p.relative_to(ROOT).as_posix(), line) for p in PAGES for line in _command_lines(p)]


def test_the_docs_show_commands():
    assert len(_all_command_lines()) >= 10


@pytest.mark.parametrize(("page", "line"), _all_command_lines())
def test_every_command_shown_parses(page: str, line: str):
    from cnnport.apps.cli import build_parser

    parser = build_parser()
    words = shlex.split(line)[1:]
    if words in ([], ["--help"]) or "--help" in words or "-h" in words:
        return
    try:
        parser.parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"{page}: `{line}` does not parse (exit {exc.code})")


def test_the_readme_stays_short():
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= 300, f"README.md has {lines} lines; the reference belongs in docs/ (at most 300)"


def test_the_card_example_is_a_valid_card():
    from cnnport.runtime import SCHEMA_VERSION, ModelCard

    page = (ROOT / "docs" / "model-card.md").read_text()
    examples = re.findall(r"^```json\n(.*?)^```", page, re.M | re.S)
    assert examples, "docs/model-card.md shows no ```json card"
    card = ModelCard.from_json(examples[0])
    assert card.schema_version == SCHEMA_VERSION
