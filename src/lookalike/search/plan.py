"""Query planning: what a query means (an image: file, URL, bytes, an indexed id; or words), which signals
a search holds ("text", "image", "face"; each at most once) and their fusion weights."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lookalike.io.urls import is_url

Kind = Literal["image_path", "image_url", "image_bytes", "image_id", "text"]
MAX_QUERY_CHARS = 1000  # words of one query, CLI and REST alike (a query's phrases are looked up per word)
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}


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
    if text.startswith("id:"):  # not words: "id:abc" would search for the words "id" and "abc"
        return Query("image_id", parse_id(text[3:].strip(), text))
    expanded = os.path.expanduser(text)
    if os.path.isfile(expanded):
        return Query("image_path", os.path.abspath(expanded))
    looks_like_path = os.sep in text or os.path.splitext(text)[1].lower() in _IMAGE_SUFFIXES
    if looks_like_path or (os.path.exists(expanded) and not os.path.isdir(expanded)):  # a FIFO, a device
        _no_file(text, expanded, "query image")
    return Query("text", text)


MAX_ID = 2**63 - 1  # the largest integer both stores hold
_ID = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() takes "²", int() takes "٣"


def parse_id(digits: str, given: object = None) -> int:
    """An image id written as digits (the N of ``id:N``), or a one-line error naming ``given``."""
    from lookalike.errors import LookalikeError

    if not _ID.fullmatch(digits) or int(digits) > MAX_ID:
        shown = digits if given is None else given
        raise LookalikeError(f"not an image id: {shown!r} (id:N, N the number search results show)")
    return int(digits)


def _no_file(given: object, path: str, what: str) -> None:
    """Raise the one-line error for ``path`` (as ``given``), which is not a file: a folder, or nothing."""
    from lookalike.errors import LookalikeError, NotFound

    if os.path.isdir(path):
        raise LookalikeError(f"{what} is a folder, not an image: {given} (index it with `lookalike index`)")
    if not os.path.exists(path):
        raise NotFound(f"{what} not found: {given}")
    from lookalike.io.crawl import not_a_file

    raise LookalikeError(f"{what} {given}: {not_a_file(path)}")


# how an example image is compared: embeddings (re-ranked, search/example.py), class scores, or plain cosine
SEARCH_BY = ("embedding", "tags", "cosine")
SIGNALS = ("text", "image", "face")  # what a combined query may hold, each with an RRF weight
MAX_LIMIT = 10_000


def signal_parts(query: str | None = None, *, image: str | os.PathLike[str] | bytes | None = None,
                 text: str | None = None, url: str | None = None, image_id: int | None = None,
                 face: str | os.PathLike[str] | bytes | None = None) -> dict[str, Query]:
    """The query's signals: "text", "image" and/or "face", each at most once."""
    from lookalike.errors import LookalikeError, NotFound

    parts: dict[str, Query] = {}

    def put(name: str, q: Query) -> None:
        if name in parts:
            raise LookalikeError(f"give exactly one {name} query, not two")
        parts[name] = q

    if query is not None:
        q = plan(query)
        put("text" if q.kind == "text" else "image", _words(q))
    if text is not None:
        put("text", _words(Query("text", text)))
    if sum(v is not None for v in (image, url, image_id)) > 1:
        raise LookalikeError("give at most one example image: a file, bytes, a URL or an image id")
    if image is not None or url is not None or image_id is not None:
        put("image", example_query(image, url, image_id))
    if face is not None:
        fq = Query("image_bytes", face) if isinstance(face, bytes) else plan(os.fspath(face))
        if fq.kind == "text":
            _no_file(face, os.path.expanduser(os.fspath(face)), "face photo")  # type: ignore[arg-type]
            raise NotFound(f"face photo not found: {face}")
        put("face", fq)
    if not parts:
        raise LookalikeError("give a query: words, an image file, image bytes, a URL, an image id or a face photo")
    return parts


_EXCLUDED = re.compile(r'(?:(?<=\s)|^)-(?:"([^"]+)"|([^\W\d_][^\s]*))')


def split_exclusions(text: str) -> tuple[str, list[str]]:
    """``"beach -people -\"palm tree\""`` -> ``("beach", ["people", "palm tree"])``: a word (or a quoted
    phrase) right after a ``-`` that starts a word is left out of the results. A hyphen inside a word
    ("t-shirt") or before a digit ("-3") is not one."""
    excluded = [(m.group(1) or m.group(2)).strip() for m in _EXCLUDED.finditer(text)]
    kept = " ".join(_EXCLUDED.sub(" ", text).split())
    return kept, [w for w in excluded if w]


def common_words_only(text: str) -> list[str]:
    """The words of ``text`` when every one is a word never searched on its own ("the of", "photos of"), else
    []: a search by them finds nothing, and says why."""
    from lookalike.models.vocab import STOPWORDS, normalize
    from lookalike.stores.base import FTS_STOPWORDS

    words = normalize(text).split()
    return words if words and all(w in STOPWORDS or w in FTS_STOPWORDS for w in words) else []


def _words(q: Query) -> Query:
    """A text query as given, refused when it has no words or more than MAX_QUERY_CHARS characters."""
    from lookalike.errors import LookalikeError

    if q.kind != "text":
        return q
    if not str(q.value).strip():
        raise LookalikeError("the query has no words: give words, an image file, a URL or an image id")
    if len(str(q.value)) > MAX_QUERY_CHARS:
        raise LookalikeError(f"the query has {len(str(q.value))} characters; at most {MAX_QUERY_CHARS} are searched")
    return q


def example_query(image: str | os.PathLike[str] | bytes | None, url: str | None, image_id: int | None) -> Query:
    """Exactly one of an image file, image bytes, a URL or an indexed image's id, as a query."""
    from lookalike.errors import NotFound

    if url is not None:
        return Query("image_url", url)
    if image_id is not None:
        return Query("image_id", int(image_id))
    if isinstance(image, bytes):
        return Query("image_bytes", image)
    path = os.path.abspath(os.path.expanduser(os.fspath(image)))  # type: ignore[arg-type]
    if not os.path.isfile(path):
        _no_file(image, path, "query image")
        raise NotFound(f"query image not found: {image}")
    return Query("image_path", path)


def signal_weights(weights: Mapping[str, float] | None, parts: Mapping[str, Query]) -> dict[str, float]:
    """Each signal's RRF weight (1 unless given); a weight for a signal the query lacks is checked, then unused."""
    from lookalike.errors import LookalikeError

    w = {n: 1.0 for n in parts}
    for name, value in (weights or {}).items():
        if name not in SIGNALS:
            raise LookalikeError(f"unknown signal {name!r} in weights; choose from {', '.join(SIGNALS)}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise LookalikeError(f"weight of {name} must be a number, not {value!r}") from None
        if not math.isfinite(value) or value < 0:
            raise LookalikeError(f"weight of {name} must be a finite number and must not be negative, not {value!r}")
        if name in w:
            w[name] = value
    return w
