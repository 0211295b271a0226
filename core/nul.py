"""NUL characters in JSON text, which PostgreSQL cannot store in a text or JSON column: one rule
for the middleware's check of JSON bodies and the with-files submit's `inputs` form value."""

from __future__ import annotations

import re

# A `\u0000` escape; `\\u0000` (an escaped backslash, then "u0000") is plain text.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_NUL_ESCAPE_BYTES = re.compile(_NUL_ESCAPE.pattern.encode())


def json_holds_nul(text: str | bytes) -> bool:
    """Whether JSON text holds a NUL character, raw or escaped (once parsed, a string would)."""
    if isinstance(text, bytes):
        return b"\x00" in text or _NUL_ESCAPE_BYTES.search(text) is not None
    return "\x00" in text or _NUL_ESCAPE.search(text) is not None
