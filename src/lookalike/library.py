"""The public API. The CLI and the REST API are thin layers over these functions.

    from lookalike import Library
    lib = Library("~/photos-index")
    lib.index(["~/Pictures"])
    lib.search("cat")                  # keywords
    lib.search(image="query.jpg")      # by example
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lookalike.config import DEFAULT_MODEL, Settings
from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.indexer import Indexer, IndexSummary, Progress
from lookalike.io.fetch import fetch_url
from lookalike.io.read import load
from lookalike.models.base import Model
from lookalike.search.plan import Query, plan
from lookalike.stores import open_store
from lookalike.stores.base import Filters, Hit, ImageInfo, Store
from lookalike.search.fuse import rrf

SEARCH_BY = ("embedding", "tags")
SIGNALS = ("text", "image", "face")  # what a combined query may hold, each with an RRF weight


@dataclass
class Result:
    id: int
    path: str
    score: float
    tags: list[dict[str, object]]
    width: int
    height: int
    folder: str
    taken_at: str | None = None
    camera: str | None = None
    texts: dict[str, str] = field(default_factory=dict)  # caption, description, ocr

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["score"] = round(float(self.score), 6)
        return d


@dataclass
class SearchResult:
    query: str
    kind: str
    by: str
    results: list[Result]
    explain: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"query": self.query, "kind": self.kind, "by": self.by,
                                  "results": [r.as_dict() for r in self.results]}
        if self.explain:
            out["explain"] = self.explain
        return out


class Library:
    def __init__(self, library: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 **overrides: object) -> None:
        if settings is None:
            settings = Settings.from_env(library=library, **overrides)
        elif library is not None or overrides:
            from dataclasses import replace

            settings = replace(settings, **({"library": Path(library)} if library is not None else {}), **overrides)  # type: ignore[arg-type]
        self.settings = settings

    # -- stages ------------------------------------------------------------------------------------------
    @cached_property
    def store(self) -> Store:
        return open_store(self.settings)

    @cached_property
    def model(self) -> Model:
        from lookalike.models.registry import load_model

        name = self.settings.model  # chosen explicitly (flag, env or API) ...
        if name is None:  # ... else the model that built the index, else the default
            info = self.store.model_info()
            name = info["name"] if info else DEFAULT_MODEL
        return load_model(name, self.settings.device, self.settings.threads, self.settings.engine)

    @cached_property
    def vocabulary(self):  # type: ignore[no-untyped-def]
        from lookalike.models.vocab import Vocabulary

        return Vocabulary()

    # -- indexing ----------------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | os.PathLike[str]], *, progress: bool = False,
              on_progress: Progress | None = None) -> IndexSummary:
        summary = Indexer(self.store, self.model, self.settings, progress=progress, on_progress=on_progress).run(paths)
        if not summary.interrupted:
            summary.vector_index = self.store.optimize(progress=progress)
        return summary

    # -- search ------------------------------------------------------------------------------------------
    def search(self, query: str | None = None, *, image: str | os.PathLike[str] | bytes | None = None,
               text: str | None = None, url: str | None = None, image_id: int | None = None,
               face: str | os.PathLike[str] | bytes | None = None,
               by: str = "embedding", limit: int = 20, threshold: float | None = None,
               filters: Filters | None = None, weights: Mapping[str, float] | None = None,
               expand: bool = True, semantic: bool | None = None, more_like: Sequence[int] = (),
               less_like: Sequence[int] = ()) -> SearchResult:
        """One signal (words, an example image, a face) or several at once, fused by weighted reciprocal
        rank (``weights``: signal -> weight, signals "text", "image", "face"). ``filters`` apply to every
        kind. Keyword options: ``expand`` (visual-neighbour expansion), ``semantic`` (sentence model; None =
        when installed). Relevance feedback: ``more_like`` / ``less_like`` image ids re-rank the results
        (either alone is a search of its own: "more like these")."""
        if by not in SEARCH_BY:
            raise LookalikeError(f"unknown --by {by!r}; choose one of {', '.join(SEARCH_BY)}")
        if (more_like or less_like) and all(v is None for v in (query, image, text, url, image_id, face)):
            return self._feedback_only(more_like, less_like, limit, threshold, filters)
        parts = self._parts(query, image=image, text=text, url=url, image_id=image_id, face=face)
        limit = max(1, min(int(limit), 10_000))
        explain: dict[str, object] = {}
        w = self._weights(weights, parts)  # checked before any work
        depth = limit if len(parts) == 1 else max(limit * 3, 50)
        lists = {name: self._signal_hits(name, q, by, depth, filters, explain, expand, semantic)
                 for name, q in parts.items()}
        if len(parts) == 1:
            name, q = next(iter(parts.items()))
            hits = lists[name]
            kind, by = ("face", "face") if name == "face" else (q.kind, "keywords" if name == "text" else by)
            described = q.describe()
        else:
            hits = rrf(lists, w)
            kind, by = "combined", "+".join(parts)
            described = " + ".join(f"{n}:{q.describe()}" for n, q in parts.items())
            explain["signals"] = {n: {"weight": w[n], "hits": len(lists[n])} for n in parts}
        if more_like or less_like:
            from lookalike.search.concepts import feedback

            hits = feedback(self.store, hits, more_like, less_like, limit, filters, explain)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return SearchResult(described, kind, by, self.results(hits[:limit]), explain)

    def _feedback_only(self, more_like: Sequence[int], less_like: Sequence[int], limit: int,
                       threshold: float | None, filters: Filters | None) -> SearchResult:
        from lookalike.search.concepts import feedback

        explain: dict[str, object] = {}
        hits = feedback(self.store, [], more_like, less_like, max(1, min(int(limit), 10_000)), filters, explain)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        described = "more like " + ", ".join(f"id:{i}" for i in more_like)
        return SearchResult(described, "feedback", "feedback", self.results(hits[:limit]), explain)

    def _parts(self, query: str | None, *, image, text, url, image_id, face) -> dict[str, Query]:  # type: ignore[no-untyped-def]
        """The query's signals: "text", "image" and/or "face", each at most once."""
        parts: dict[str, Query] = {}

        def put(name: str, q: Query) -> None:
            if name in parts:
                raise LookalikeError(f"give exactly one {name} query, not two")
            parts[name] = q

        if query is not None:
            q = plan(query)
            put("text" if q.kind == "text" else "image", q)
        if text is not None:
            put("text", Query("text", text))
        if sum(v is not None for v in (image, url, image_id)) > 1:
            raise LookalikeError("give at most one example image: a file, bytes, a URL or an image id")
        if image is not None or url is not None or image_id is not None:
            put("image", self._query(None, image=image, text=None, url=url, image_id=image_id))
        if face is not None:
            fq = Query("image_bytes", face) if isinstance(face, bytes) else plan(os.fspath(face))
            if fq.kind == "text":
                raise NotFound(f"face photo not found: {face}")
            put("face", fq)
        if not parts:
            raise LookalikeError("give a query: words, an image file, image bytes, a URL, an image id or a face photo")
        return parts

    @staticmethod
    def _weights(weights: Mapping[str, float] | None, parts: Mapping[str, Query]) -> dict[str, float]:
        w = {n: 1.0 for n in parts}
        for name, value in (weights or {}).items():
            if name not in SIGNALS:
                raise LookalikeError(f"unknown signal {name!r} in weights; choose from {', '.join(SIGNALS)}")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise LookalikeError(f"weight of {name} must be a number, not {value!r}") from None
            if value < 0:
                raise LookalikeError(f"weight of {name} must not be negative")
            if name in w:
                w[name] = value
        return w

    def _signal_hits(self, name: str, q: Query, by: str, limit: int, filters: Filters | None,  # noqa: PLR0913
                     explain: dict[str, object], expand: bool, semantic: bool | None) -> list[Hit]:
        if name == "text":
            return self._keyword_hits(str(q.value), limit, filters, explain, expand=expand, semantic=semantic)
        if name == "face":
            return self._face_hits(q, limit, filters, explain)
        emb, cls = self.query_vectors(q)
        if by == "tags":
            return self._tag_vector_hits(cls, limit, filters)
        return self.store.knn(emb, limit, filters)

    def _query(self, query: str | None, *, image, text, url, image_id) -> Query:  # type: ignore[no-untyped-def]
        given = [v is not None for v in (query, image, text, url, image_id)]
        if sum(given) != 1:
            raise LookalikeError("give exactly one query: words, an image file, image bytes, a URL or an image id")
        if query is not None:
            return plan(query)
        if text is not None:
            return Query("text", text)
        if url is not None:
            return Query("image_url", url)
        if image_id is not None:
            return Query("image_id", int(image_id))
        if isinstance(image, bytes):
            return Query("image_bytes", image)
        path = os.path.abspath(os.path.expanduser(os.fspath(image)))  # type: ignore[arg-type]
        if not os.path.isfile(path):
            raise NotFound(f"query image not found: {image}")
        return Query("image_path", path)

    def query_vectors(self, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
        """The query image through the same read and model stages as indexed images."""
        self._check_model()
        if q.kind == "image_id":
            emb, cls = self.store.vectors([int(q.value)])  # type: ignore[call-overload]
            if not len(emb):
                raise NotFound(f"no indexed image with id {q.value}")
            return emb[0], None if cls is None else cls[0]
        decoded = self._load_query(q, min_side=round(self.model.input_size / 0.875))
        enc = self.model.encode([decoded.image])
        return enc.embeddings[0], None if enc.class_scores is None else enc.class_scores[0]

    def _load_query(self, q: Query, min_side: int | None):  # type: ignore[no-untyped-def]
        s = self.settings
        if q.kind == "image_url":
            data = fetch_url(str(q.value), allow_private=s.allow_private_urls, timeout=s.url_timeout_s,
                             max_bytes=s.max_upload_mb * 1_000_000)
        elif q.kind == "image_bytes":
            data = q.value  # type: ignore[assignment]
        else:
            data = str(q.value)  # type: ignore[assignment]
        return load(data, min_side=min_side, max_pixels=s.max_pixels,  # type: ignore[arg-type]
                    max_bytes=s.max_file_mb * 1_000_000)

    def _check_model(self) -> None:
        info = self.store.model_info()
        if info and (info["name"] != self.model.name or str(info["dim"]) != str(self.model.dim)):
            raise ModelMismatch(f"this index was built with {info['name']}; search with --model {info['name']} "
                                f"or re-index with {self.model.name}")
        if info and info["version"] and info["version"] != self.model.version:  # same name, other weights
            raise ModelMismatch(f"this index was built with {info['name']} version {info['version']}, but that "
                                f"model is now {self.model.version}; re-index to re-embed with it")

    def _keyword_hits(self, text: str, limit: int, filters: Filters | None, explain: dict[str, object],
                      expand: bool = True, semantic: bool | None = None) -> list[Hit]:
        from lookalike.search.keywords import keyword_hits

        taught, rest = self._taught(text)
        if taught:
            from lookalike.search.concepts import taught_hits

            rest_hits = keyword_hits(self.store, self.vocabulary, rest, max(limit * 3, 50), filters, explain,
                                     expand=expand, semantic=semantic) if rest else None
            return taught_hits(self.store, taught, rest_hits, limit, filters, explain)
        hits = keyword_hits(self.store, self.vocabulary, text, limit, filters, explain, expand=expand,
                            semantic=semantic)
        clip_hits = self._text_vector_hits(text, limit, filters, explain)
        if not clip_hits:
            return hits
        return rrf({"keywords": hits, "text_embedding": clip_hits}) if hits else clip_hits

    def _text_vector_hits(self, text: str, limit: int, filters: Filters | None, explain: dict[str, object]) -> list[Hit]:
        """Free text through the model's text tower, when the index was built by a model that has one (CLIP)."""
        from lookalike.models.base import TextEncoder
        from lookalike.models.registry import embeds_text

        info = self.store.model_info()
        if not info or not embeds_text(info["name"]) or not isinstance(self.model, TextEncoder):
            return []
        self._check_model()
        explain["text_embedding"] = self.model.name
        return self.store.knn(self.model.encode_text([text])[0], limit * 2, filters)

    def _face_hits(self, q: Query, limit: int, filters: Filters | None, explain: dict[str, object]) -> list[Hit]:
        from lookalike.models.faces import SAME_PERSON, face_model

        if q.kind == "image_id":
            stored = self.store.faces([int(q.value)]).get(int(q.value), [])  # type: ignore[call-overload]
            if not stored:
                raise NotFound(f"no face stored for image id {q.value} (index with --faces)")
            box, emb, n = stored[0].box, stored[0].embedding, len(stored)
        else:
            decoded = self._load_query(q, min_side=None)
            found = face_model().faces(decoded.image, (decoded.width, decoded.height))
            if not found:
                raise LookalikeError("no face found in the query photo (faces need to be frontal, at least ~40 px)")
            box, emb, n = found[0].box, found[0].embedding, len(found)
        explain["face"] = {"box": list(box), "faces_in_query": n, "max_distance": SAME_PERSON}
        return self.store.face_search(emb, limit, filters, max_distance=SAME_PERSON)

    def _tag_vector_hits(self, cls: np.ndarray | None, limit: int, filters: Filters | None) -> list[Hit]:
        """The visual-words method: inner product of class-score vectors. Candidates come from the tag index
        (the query's top classes), then are ranked by the exact inner product of the full vectors."""
        if cls is None:
            raise LookalikeError(f"model {self.model.name} has no class scores; use --by embedding")
        top = np.argsort(-cls)[:20]
        weights = {int(c): float(cls[c]) for c in top if cls[c] > 0}
        cands = self.store.tag_search(weights, max(limit * 5, 100), filters)
        if not cands:
            return []
        ids = [h.id for h in cands]
        _, vecs = self.store.vectors(ids)
        if vecs is None:
            return cands[:limit]
        scores = vecs @ cls.astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return [Hit(ids[i], float(scores[i])) for i in order[:limit]]

    def results(self, hits: Sequence[Hit]) -> list[Result]:
        infos = {i.id: i for i in self.store.get([h.id for h in hits])}
        return [self._result(infos[h.id], h.score) for h in hits if h.id in infos]

    def _result(self, info: ImageInfo, score: float) -> Result:
        return Result(id=info.id, path=info.path, score=score, tags=self.tag_dicts(info.tags), width=info.width,
                      height=info.height, folder=info.folder, taken_at=info.taken_at, camera=info.camera,
                      texts=dict(info.texts))

    def tag_dicts(self, tags: Sequence[tuple[int, float]], min_score: float = 0.05, limit: int = 5) -> list[dict[str, object]]:
        out = []
        for cls, score in tags[:limit]:
            if score < min_score and out:
                break
            d = self.vocabulary.describe(cls)
            out.append({"name": d["name"], "wnid": d["wnid"], "score": round(float(score), 4)})
        return out

    # -- taught words ----------------------------------------------------------------------------------
    def teach(self, word: str, examples: Sequence[str | int], counter: Sequence[str | int] = ()) -> dict[str, object]:
        """Teach ``word`` from examples (image files, folders, ids / "id:N") and counter-examples; teaching
        a known word adds to its examples. Returns the concept as :meth:`concepts` lists it."""
        from lookalike.models.concepts import check_word
        from lookalike.search.concepts import explain_concept
        from lookalike.search.teach import resolve, teach

        w = check_word(word)
        pos = resolve(self.store, examples, self._embed_files)
        neg = resolve(self.store, counter, self._embed_files, positive=False)
        return explain_concept(teach(self.store, w, pos, neg))

    def concepts(self) -> list[dict[str, object]]:
        """Every taught word: examples, counter-examples, model, cross-validated precision estimate."""
        from lookalike.search.concepts import explain_concept

        return [explain_concept(c) for c in self.store.concepts()]

    def forget(self, word: str) -> str:
        from lookalike.models.concepts import normalize_word

        w = normalize_word(word)
        if not self.store.delete_concept(w):
            raise NotFound(f"no taught word {word!r} (lookalike concepts lists them)")
        return w

    def _taught(self, text: str) -> tuple[list, str]:  # type: ignore[type-arg]
        """The taught words in a words query (re-fitted first after a model change), and the other words."""
        from lookalike.search.concepts import split_taught
        from lookalike.search.teach import current

        known = {c.word: c for c in self.store.concepts()}
        if not known:
            return [], text
        found, rest = split_taught(text, list(known))
        return [current(self.store, known[w], self._embed_files) for w in found], rest

    def _embed_files(self, paths: Sequence[str]) -> np.ndarray:
        """Image files outside the library through the library's own read and model stages."""
        self._check_model()
        out = []
        for start in range(0, len(paths), 16):
            images = [self._load_query(Query("image_path", p), min_side=round(self.model.input_size / 0.875)).image
                      for p in paths[start:start + 16]]
            out.append(self.model.encode(images).embeddings)
        return np.vstack(out).astype(np.float32)

    # -- duplicates ------------------------------------------------------------------------------------
    def dupes(self, *, method: str = "verified", threshold: float | None = None, filters: Filters | None = None,
              neighbours: int = 10, progress: bool = False):  # type: ignore[no-untyped-def]
        """Groups of exact copies and near duplicates (edited copies), the best copy first in each. Methods:
        ``verified`` (default: embeddings + geometric verification), ``embedding``, ``phash``; ``threshold``
        on that method's similarity (default: its calibrated zero-false-positive point). Changes nothing."""
        from lookalike.search.dupes import find_duplicates

        return find_duplicates(self.store, self.settings, method=method, threshold=threshold, filters=filters,
                               neighbours=neighbours, progress=progress)

    def remove_duplicates(self, report, *, delete: bool = False, move_to: str | None = None  # type: ignore[no-untyped-def]
                          ) -> list[tuple[str, str]]:
        """Delete (or move into ``move_to``) every copy but the best of each group of ``report``, and drop them
        from the index. Only ever called on an explicit request (``lookalike dupes --delete/--move-to``)."""
        from lookalike.search.dupes import act_on

        done = act_on(report.groups, delete=delete, move_to=move_to)
        gone = {p for p, what in done if not what.startswith("left alone")}
        ids = [it.id for g in report.groups for it in g.items if it.path in gone]
        if ids:
            self.store.write(deletes=ids)
        return done

    # -- records -----------------------------------------------------------------------------------------
    def get(self, image_id: int) -> ImageInfo:
        found = self.store.get([image_id])
        if not found:
            raise NotFound(f"no indexed image with id {image_id}")
        return found[0]

    def folders(self) -> list[tuple[str, int]]:
        """Every folder that directly holds indexed images, with its image count, sorted by path."""
        counts: dict[str, int] = {}
        for path in self.store.file_states():
            folder = os.path.dirname(path)
            counts[folder] = counts.get(folder, 0) + 1
        return sorted(counts.items())

    def import_descriptions(self, file: str | os.PathLike[str]) -> dict[str, object]:
        """Attach user descriptions/captions from a JSON or CSV file (path -> text) to indexed images; they
        become searchable text ("description"). Relative paths are taken from the file's folder, then from
        the current folder. Returns counts and the paths that are not in the library."""
        from lookalike.io.descriptions import read_descriptions

        entries = read_descriptions(file)
        base = os.path.dirname(os.path.abspath(os.path.expanduser(os.fspath(file))))
        imported, missing = 0, []
        for path, body in entries:
            info = None
            for candidate in _candidates(path, base):
                info = self.store.get_by_path(candidate)
                if info is not None:
                    break
            if info is None:
                missing.append(path)
                continue
            self.store.set_texts(info.id, {"description": body})
            imported += 1
        return {"imported": imported, "missing": missing, "entries": len(entries)}

    def info(self) -> dict[str, object]:
        stats = dict(self.store.stats())
        stats["library"] = str(self.settings.library) if not self.settings.db else None
        return stats

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _candidates(path: str, base: str) -> list[str]:
    p = os.path.expanduser(path)
    if os.path.isabs(p):
        return [os.path.normpath(p)]
    return [os.path.normpath(os.path.join(base, p)), os.path.normpath(os.path.abspath(p))]
