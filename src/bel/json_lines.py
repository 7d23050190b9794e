"""One JSON object per line: the parsing and type names shared by the JSONL corpus reader and the JSONL KB reader."""

from __future__ import annotations

import json

_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}


def json_kind(value: object) -> str:
    """How an error message names the JSON type of `value` ("a string", "null", ...)."""
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


def parse_object_line(line: str, where: str, error: type[ValueError], expected: str = "a JSON object") -> dict:
    """The JSON object on `line`, or `error` naming `where` (file:line) when it is not valid JSON or not an object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as problem:
        raise error(f"{where}: not valid JSON ({problem})") from None
    if not isinstance(record, dict):
        raise error(f"{where}: expected {expected}, got {json_kind(record)}")
    return record
