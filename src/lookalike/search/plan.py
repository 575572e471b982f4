"""What a query means: an image (file, URL, bytes, an indexed id) or words."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from lookalike.io.fetch import is_url

Kind = Literal["image_path", "image_url", "image_bytes", "image_id", "text"]


@dataclass(frozen=True)
class Query:
    kind: Kind
    value: object  # str path/url/text, bytes, or int id

    def describe(self) -> str:
        if self.kind == "image_bytes":
            return f"<uploaded image, {len(self.value)} bytes>"  # type: ignore[arg-type]
        if self.kind == "image_id":
            return f"id:{self.value}"
        return str(self.value)


def plan(text: str) -> Query:
    """Interpret one CLI query string: an existing file, an http(s) URL, ``id:N``, or keywords."""
    if is_url(text):
        return Query("image_url", text)
    if text.startswith("id:") and text[3:].isdigit():
        return Query("image_id", int(text[3:]))
    expanded = os.path.expanduser(text)
    if os.path.isfile(expanded):
        return Query("image_path", os.path.abspath(expanded))
    looks_like_path = os.sep in text or os.path.splitext(text)[1].lower() in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}
    if looks_like_path and not os.path.exists(expanded):
        from lookalike.errors import NotFound

        raise NotFound(f"query image not found: {text}")
    return Query("text", text)
