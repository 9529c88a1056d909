"""Prompt and message files → text: `load("refusal")` reads prompts/refusal.txt once and caches it."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

_DIR = Path(__file__).resolve().parent
_NAME = re.compile(r"^[a-z0-9_]+$")


@cache
def load(name: str) -> str:
    """The text of prompts/{name}.txt without its trailing newline; KeyError for an unknown name."""
    if not _NAME.match(name):
        raise KeyError(f"not a prompt name: {name!r}")
    path = _DIR / f"{name}.txt"
    if not path.is_file():
        raise KeyError(f"no prompt file {path.name}")
    return path.read_text("utf-8").rstrip("\n")


def render(name: str, **values: object) -> str:
    """`load(name)` with `{placeholders}` filled in (str.format)."""
    return load(name).format(**values)


@cache
def table(name: str) -> dict[str, str]:
    """prompts/{name}.txt read as one `key: text` a line (lines starting with # are comments)."""
    out: dict[str, str] = {}
    for line in load(name).splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, text = line.partition(":")
            out[key.strip()] = text.strip()
    return out


@cache
def structured(name: str) -> dict[str, object]:
    """prompts/{name}.json: texts given as a whole to a client (the widget's, per language)."""
    if not _NAME.match(name):
        raise KeyError(f"not a prompt name: {name!r}")
    path = _DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no prompt file {path.name}")
    data: dict[str, object] = json.loads(path.read_text("utf-8"))
    return data
