"""Every flag an error or warning message names is a flag some `cnnport` command has.

A message that sends the user to a flag that does not exist (int8's old "pass
--calibration FILE.npz") is a dead end; this walks the source of every package.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from cnnport.apps.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runtime", "export", "train", "apps")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
LOG_CALLS = {"warning", "error", "critical", "info", "exception"}


def _strings(node: ast.AST) -> list[str]:
    """String constants in ``node``, f-string parts included."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _message_strings(tree: ast.AST) -> list[str]:
    """Strings in raised exceptions and in logging calls."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            found += _strings(node.exc)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) in LOG_CALLS:
            found += _strings(node)
    return found


def _all_flags() -> set[str]:
    flags: set[str] = set()
    parser = build_parser()
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return flags


def test_messages_name_only_flags_that_exist():
    flags = _all_flags()
    assert {"--calibration", "--head", "--input-size", "--data"} <= flags
    unknown = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for text in _message_strings(ast.parse(path.read_text(encoding="utf-8"))):
                for flag in FLAG.findall(text):
                    if flag.rstrip("-") not in flags:
                        unknown.setdefault(flag, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"messages name flags no command has: {unknown}"
