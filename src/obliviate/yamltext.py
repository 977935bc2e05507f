"""YAML read the same way by every file a user hands over (``--config``, recipes): a
syntax error is one line naming the file and line, never a traceback."""

from __future__ import annotations

from typing import Any

import yaml

from obliviate.errors import ObliviateError


def parse_yaml(text: str, where: str, what: str = "file") -> Any:
    """``text`` parsed; ``where`` (a path) and ``what`` (``config file``, ``recipe``) name it
    in the error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ObliviateError(
            f"{what} {where}{line} is not valid YAML ({problem}); fix the file"
        ) from exc
