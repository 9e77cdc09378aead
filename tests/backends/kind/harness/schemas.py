"""The JSON schemas the stand-ins validate against (``tests/backends/kind/schemas/``), loaded once per call."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jsonschema

FOLDER = Path(__file__).resolve().parents[1] / "schemas"


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for ``schemas/<name>``, of the draft the schema names (formats are not checked).

    ``rfc3987_syntax`` is kept out: jsonschema imports it for the ``iri`` format at import time, which takes a
    second of every stand-in call, and no format is checked here."""
    sys.modules.setdefault("rfc3987_syntax", None)
    import jsonschema

    schema = json.loads((FOLDER / name).read_text())
    cls = jsonschema.Draft7Validator if "draft-07" in schema.get("$schema", "") else jsonschema.Draft202012Validator
    return cls(schema)
