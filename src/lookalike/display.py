"""Text for people: paths in one-result-per-line output.

A file name may hold any byte but ``/`` and NUL, newlines and terminal escapes included. Printed raw, a name
with a newline would read as two results (and an escape sequence could rewrite the terminal), so such names
are quoted the way a shell would read them back: ``$'a\\nb.jpg'``. Ordinary names, spaces and non-ASCII
letters included, are printed as they are.
"""

from __future__ import annotations

import unicodedata

_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'"}


def needs_quoting(text: str) -> bool:
    return any(unicodedata.category(ch)[0] == "C" for ch in text)  # control, format, surrogate, unassigned


def quote_path(path: str) -> str:
    """``path`` as is when it prints on one line without surprises, else ANSI-C quoted (``$'...'``)."""
    if not needs_quoting(path):
        return path
    out = []
    for ch in path:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch)[0] == "C":
            code = ord(ch)
            if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
                out.append(f"\\x{code - 0xDC00:02x}")
            else:
                out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"
