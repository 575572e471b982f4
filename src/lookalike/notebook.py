"""Results in Jupyter: search results and duplicate reports render as pictures, not reprs.

:class:`NotebookView` is mixed into :class:`~lookalike.library.SearchResult` and
:class:`~lookalike.search.dupes.DupesReport`. Each of them says what its rows are (:meth:`_rows`, one dict per
photo); from those rows this module gives

- ``_repr_html_()``: a grid of small thumbnails (JPEG, at most ``THUMB`` px, embedded as ``data:`` URLs with
  ``loading="lazy"``) with rank, score, name and tags; Jupyter shows it inline. Every text is HTML-escaped.
- ``.show()``: the same as a PIL image (a contact sheet, :mod:`lookalike.grid`), which Jupyter also shows.
- ``.to_pandas()``: a DataFrame of the rows (pandas is optional: ``pip install 'lookalike[notebook]'``).

Sizes: a 120 px JPEG at quality 70 is ~3-5 kB, so 20 results add ~80 kB to a notebook; at most
``MAX_THUMBS`` thumbnails are embedded, the rest are listed as names (a notebook of 1,000 results stays small).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from typing import Any

THUMB = 120  # px, longest side of an embedded thumbnail
QUALITY = 70  # JPEG quality of embedded thumbnails
MAX_THUMBS = 60  # thumbnails embedded in one rendering; later rows are listed without a picture


def thumbnail_data_url(path: str, size: int = THUMB, box: tuple[int, int, int, int] | None = None) -> str | None:
    """A small JPEG of the image at ``path`` (or of the ``box`` (left, top, width, height) in it, with a margin:
    a face) as a data: URL, or None when the file cannot be read."""
    from lookalike.errors import ImageError
    from lookalike.io.read import load

    try:
        img = load(path, min_side=None if box else size).image
    except (ImageError, OSError):
        return None
    if box:
        x, y, w, h = box
        m = max(w, h) // 3
        img = img.crop((max(0, x - m), max(0, y - m), min(img.width, x + w + m), min(img.height, y + h + m)))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = ("<style>.lookalike-grid{display:flex;flex-wrap:wrap;gap:8px;font:12px sans-serif}"
        ".lookalike-grid figure{margin:0;width:%dpx}.lookalike-grid img{width:%dpx;height:%dpx;object-fit:contain;"
        "background:#eee;border-radius:4px}.lookalike-grid .best img{outline:3px solid #2a8;}"
        ".lookalike-grid .copy img{outline:3px solid #d80;}"
        ".lookalike-grid figcaption{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
        ".lookalike-grid .tags{color:#666}</style>") % (THUMB, THUMB, THUMB)


def _cell(row: dict[str, Any], label: str, with_thumb: bool) -> str:
    e = html.escape
    url = thumbnail_data_url(row["path"], box=row.get("box")) if with_thumb else None
    pic = (f'<img src="{url}" loading="lazy" alt="{e(os.path.basename(row["path"]))}">' if url
           else f'<div style="width:{THUMB}px;height:{THUMB}px;background:#eee"></div>')
    tags = ", ".join(str(t) for t in row.get("tags") or [])
    kind = " ".join(k for k in ("best", "copy") if row.get(k))
    return (f'<figure class="{kind}" title="{e(row["path"])}">{pic}'
            f"<figcaption><b>{e(label)}</b></figcaption>"
            f'<figcaption>{e(os.path.basename(row["path"]))}</figcaption>'
            f'<figcaption class="tags">{e(tags)}</figcaption></figure>')


def render_html(title: str, sections: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> str:
    """HTML of titled sections of rows (a search: one section; duplicates: one per group)."""
    parts = [_CSS, f"<div><b>{html.escape(title)}</b></div>"]
    shown = 0
    for heading, rows in sections:
        if heading:
            parts.append(f"<div style='margin-top:6px'>{html.escape(heading)}</div>")
        cells = []
        for row in rows:
            cells.append(_cell(row, row["label"], shown < MAX_THUMBS))
            shown += 1
        parts.append('<div class="lookalike-grid">' + "".join(cells) + "</div>")
    return "".join(parts)


class NotebookView:
    """Inline display for result objects. Subclasses give ``_title()`` and ``_sections()``."""

    def _title(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _sections(self) -> list[tuple[str, list[dict[str, Any]]]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _query_image(self) -> str | None:
        return None

    def _rows(self) -> list[dict[str, Any]]:
        return [row for _, rows in self._sections() for row in rows]

    def _repr_html_(self) -> str:
        return render_html(self._title(), self._sections())

    def show(self, columns: int = 6):  # type: ignore[no-untyped-def]
        """A contact sheet of the photos (PIL image; Jupyter displays it)."""
        from lookalike.grid import contact_image

        rows = self._rows()
        return contact_image([(r["path"], float(r["score"])) for r in rows], query_image=self._query_image(),
                             query_label=self._title(), columns=columns)

    def to_pandas(self):  # type: ignore[no-untyped-def]
        """The rows as a pandas DataFrame (needs pandas: the ``notebook`` extra)."""
        try:
            import pandas as pd
        except ImportError:
            from lookalike.errors import LookalikeError

            raise LookalikeError("to_pandas needs pandas: pip install 'lookalike[notebook]'") from None
        rows = [{k: v for k, v in r.items() if k != "label"} for r in self._rows()]
        return pd.DataFrame(rows)


def search_sections(res) -> list[tuple[str, list[dict[str, Any]]]]:  # type: ignore[no-untyped-def]
    """A SearchResult's rows: rank, score, path, size, date, camera and tag names; for an image query's
    verified results also ``copy`` and ``copy_score`` (an edited copy of the query is marked)."""
    rows = []
    for n, r in enumerate(res.results, start=1):
        row = {"label": f"#{n}  {r.score:.3f}", "rank": n, "score": round(float(r.score), 6), "id": r.id,
               "name": os.path.basename(r.path), "path": r.path, "width": r.width, "height": r.height,
               "taken_at": r.taken_at, "camera": r.camera, "tags": [t["name"] for t in r.tags[:3]]}
        if r.copy is not None:
            row.update(copy=r.copy, copy_score=r.copy_score)
            if r.copy:
                row["label"] += f"  copy {r.copy_score:.2f}"
        rows.append(row)
    return [("", rows)]


def dupes_sections(report) -> list[tuple[str, list[dict[str, Any]]]]:  # type: ignore[no-untyped-def]
    """A DupesReport's rows, one section per group, the best copy first and marked."""
    out = []
    for n, g in enumerate(report.groups, start=1):
        rows = [{"label": "best" if it.best else ("same bytes" if it.exact else f"{it.score:.3f}"), "group": n,
                 "kind": g.kind, "best": it.best, "exact": it.exact, "score": round(float(it.score), 4),
                 "id": it.id,
                 "name": os.path.basename(it.path), "path": it.path, "width": it.width, "height": it.height,
                 "size": it.size}
                for it in g.items]
        out.append((f"group {n}: {'exact copies' if g.kind == 'exact' else 'near duplicates'} ({len(g.items)})",
                    rows))
    return out


class PeopleList(list, NotebookView):  # type: ignore[type-arg]
    """``Library.people()``: a list of Person that shows each person's most typical face in a notebook."""

    def __init__(self, people, store) -> None:  # type: ignore[no-untyped-def]
        super().__init__(people)
        self._store = store

    def _title(self) -> str:
        return f"{len(self)} people"

    def _sections(self) -> list[tuple[str, list[dict[str, Any]]]]:
        samples = [p.sample for p in self if p.sample is not None]
        paths = {i.id: i.path for i in self._store.get([s.image_id for s in samples])}
        rows = []
        for p in self:
            path = paths.get(p.sample.image_id, "") if p.sample else ""
            rows.append({"label": p.name or f"person {p.id}", "id": p.id, "name": p.name, "faces": p.faces,
                         "images": p.images, "score": float(p.faces), "path": path,
                         "box": tuple(p.sample.box) if p.sample else None,
                         "tags": [f"{p.faces} faces in {p.images} photos"]})
        return [("", rows)]
