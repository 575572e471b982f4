"""The public API and the composition root. The CLI and the REST API are thin layers over these functions.

``Library`` wires settings, a store, a model and a vocabulary (each opened on first use unless handed in)
and answers with them; searches are planned and run by search/plan.py, search/run.py and search/signals.py.

    from lookalike import Library
    lib = Library("~/photos-index")
    lib.index(["~/Pictures"])
    lib.search("cat")                  # keywords
    lib.search(image="query.jpg")      # by example
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.config import DEFAULT_MODEL, Settings
from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.io.read import content_hash, decode, open_checked, read_file
from lookalike.models.base import Model, ModelIdentity
from lookalike.notebook import NotebookView, PeopleList, search_sections
from lookalike.search.concepts import ConceptTerms
from lookalike.search.plan import SEARCH_BY, SIGNALS, Query  # noqa: F401 - SEARCH_BY, SIGNALS re-exported
from lookalike.search.run import run_search
from lookalike.stores import open_store
from lookalike.search.people import stale as people_stale
from lookalike.stores.base import Filters, Hit, ImageInfo, Store

if TYPE_CHECKING:
    from lookalike.indexer import IndexSummary, Progress
    from lookalike.models.vocab import Vocabulary


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
    mtime: float | None = None  # the file's, as indexed (seconds since the epoch): the date when EXIF has none
    # image queries only (search/copies.py): is this an edited copy of the query (verified as dupes does)
    copy: bool | None = None
    copy_score: float | None = None

    def as_dict(self) -> dict[str, object]:
        # shallow copies, not dataclasses.asdict: its recursive deep copy was 4% of the server's CPU under load
        d = {name: getattr(self, name) for name in _RESULT_FIELDS}
        d["score"] = round(float(self.score), 6)
        d["tags"] = [dict(t) for t in self.tags]
        d["texts"] = dict(self.texts)
        for key in ("copy", "copy_score"):
            if d[key] is None:
                del d[key]
        return d


_RESULT_FIELDS = tuple(f.name for f in fields(Result))


@dataclass
class SearchResult(NotebookView):  # renders inline in Jupyter; .show(), .to_pandas()
    query: str
    kind: str
    by: str
    results: list[Result]
    explain: dict[str, object] = field(default_factory=dict)

    def _title(self) -> str:
        return f"{self.query} ({self.kind}, by {self.by}): {len(self.results)} results"

    def _sections(self):  # type: ignore[no-untyped-def]
        return search_sections(self)

    def _query_image(self) -> str | None:
        return self.query if self.kind == "image_path" else None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"query": self.query, "kind": self.kind, "by": self.by,
                                  "results": [r.as_dict() for r in self.results]}
        if self.explain:
            out["explain"] = self.explain
        return out


class Library:
    """The composition root: settings, a store, a model and a vocabulary, each opened on first use unless
    given. ``Library(path)``, ``Library(settings)`` or ``Library(settings=...)``; keyword overrides change
    settings (``model="clip:..."`` names a model); ``store=``, ``model=`` (a loaded model) and
    ``vocabulary=`` hand in ready parts (tests give a small fake model). A library closes only the store it
    opened itself."""

    def __init__(self, settings: Settings | str | os.PathLike[str] | None = None, *, store: Store | None = None,
                 model: Model | str | None = None, vocabulary: Vocabulary | None = None,
                 **overrides: object) -> None:
        if isinstance(model, str):  # a model's name: a setting
            overrides["model"], model = model, None
        if not isinstance(settings, Settings):
            path = settings if settings is not None else overrides.pop("library", None)
            settings = Settings.from_env(library=path, **overrides)
        elif overrides:
            from dataclasses import replace

            if "library" in overrides:
                overrides["library"] = Path(overrides["library"])  # type: ignore[arg-type]
            settings = replace(settings, **overrides)  # type: ignore[arg-type]
        self.settings = settings
        # extra keyword term sources (taught concepts, named people): see search.keywords.TermSource
        self.term_sources: list = [ConceptTerms(self.embed_files)]  # taught words (lookalike teach)
        self._owns_store = store is None
        for name, part in (("store", store), ("model", model), ("vocabulary", vocabulary)):
            if part is not None:
                self.__dict__[name] = part  # what the cached properties below would have opened

    def with_settings(self, settings: Settings) -> "Library":
        """This library under other settings (the server's request guards, URL policy) sharing its store and
        the model and vocabulary it has loaded; ``self`` when the settings are the same."""
        if settings == self.settings:
            return self
        lib = Library(settings, store=self.store, model=self.__dict__.get("model"),
                      vocabulary=self.__dict__.get("vocabulary"))
        if "query_model" in self.__dict__ and settings.query_batching == self.settings.query_batching:
            lib.__dict__["query_model"] = self.__dict__["query_model"]  # one micro-batcher per model
        return lib

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
        s = self.settings
        return load_model(name, s.device, s.model_threads(s.device), s.engine)

    @cached_property
    def query_model(self) -> Model:
        """The model for query images: behind a micro-batcher (concurrent queries share forward passes)
        unless the ``query_batching`` setting is off. Indexing uses ``model`` directly."""
        if not self.settings.query_batching:
            return self.model
        from lookalike.models.batching import BatchingModel

        return BatchingModel(self.model)  # type: ignore[return-value]

    def warm_up(self) -> None:
        """Open the store and load what the first queries would: the model (and one forward pass, which
        allocates the engine's buffers), the vocabulary and the keyword index. For long-running servers."""
        from PIL import Image

        from lookalike.search.keywords import class_index, semantic_available

        self.store  # noqa: B018
        size = self.query_model.input_size
        self.query_model.encode([Image.new("RGB", (size, size), (128, 128, 128))])
        self.vocabulary.match("photo")
        if semantic_available():
            class_index()

    @cached_property
    def vocabulary(self) -> Vocabulary:
        from lookalike.models.vocab import Vocabulary

        return Vocabulary()

    # -- indexing ----------------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | os.PathLike[str]], *, progress: bool = False,
              on_progress: Progress | None = None, rehash: bool = False) -> IndexSummary:
        """Index ``paths`` (incremental; ``rehash``: also re-read files whose size and mtime did not change)."""
        from lookalike.indexer import Indexer  # here: a search process never loads the indexing stage

        summary = Indexer(self.store, self.model, self.settings, progress=progress,
                          on_progress=on_progress).run(paths, rehash=rehash)
        if not summary.interrupted:
            summary.vector_index = self.store.optimize(progress=progress)
            if self.settings.faces or people_stale(self.store):
                summary.people = self.update_people(progress=progress).as_dict()
            from lookalike.search.example import refresh_transform

            summary.search_transform = refresh_transform(self.store, self.model.version)
        return summary

    # -- search ------------------------------------------------------------------------------------------
    def search(self, query: str | None = None, *, image: str | os.PathLike[str] | bytes | None = None,
               text: str | None = None, url: str | None = None, image_id: int | None = None,
               face: str | os.PathLike[str] | bytes | None = None,
               by: str = "embedding", limit: int = 20, threshold: float | None = None,
               filters: Filters | None = None, weights: Mapping[str, float] | None = None,
               expand: bool = True, semantic: bool | None = None, copies: bool = True,
               more_like: Sequence[int] = (), less_like: Sequence[int] = ()) -> SearchResult:
        """One signal (words, an example image, a face) or several at once, fused by weighted reciprocal
        rank (``weights``: signal -> weight, signals "text", "image", "face"). ``filters`` apply to every
        kind. Keyword options: ``expand`` (visual-neighbour expansion), ``semantic`` (sentence model; None =
        when installed). Scores: words -> calibrated P(the photo shows them); an example image -> cosine, and
        with ``copies`` its top results verified as copies or not (``Result.copy``, ``copy_score``). Taught words
        (:meth:`teach`) are keywords like any other. Relevance feedback: ``more_like`` / ``less_like`` image ids
        re-rank the results (alone: "more like these")."""
        found = run_search(self, query, image=image, text=text, url=url, image_id=image_id, face=face, by=by,
                           limit=limit, threshold=threshold, filters=filters, weights=weights, expand=expand,
                           semantic=semantic, copies=copies, more_like=more_like, less_like=less_like)
        results = self.results(found.hits)
        for r in results:
            if r.id in found.copies:
                r.copy, r.copy_score = found.copies[r.id].copy, round(found.copies[r.id].score, 4)
        if not results and found.kind == "text" and isinstance(found.query, str):
            from lookalike.search.plan import common_words_only

            if ignored := common_words_only(found.query):  # said in the CLI and on the web page
                found.explain["common_words_only"] = ignored
        return SearchResult(found.query, found.kind, found.by, results, found.explain)

    def query_vectors(self, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
        """The query image through the same read and model stages as indexed images."""
        self.check_model()
        if q.kind == "image_id":
            emb, cls = self.store.vectors([int(q.value)])  # type: ignore[call-overload]
            if not len(emb):
                raise NotFound(f"no indexed image with id {q.value}")
            return emb[0], None if cls is None else cls[0]
        data = self.query_bytes(q)
        sha = content_hash(data)
        known = self.stored_vectors(sha)
        if known is not None:  # the library holds these very bytes: their vectors, not a decode + forward pass
            open_checked(data, self.settings.max_pixels)  # but the same guards as a decode (bombs, pixel cap)
            return known
        decoded = decode(data, min_side=round(self.model.input_size / 0.875), max_pixels=self.settings.max_pixels,
                         sha=sha)
        enc = self.query_model.encode([decoded.image])
        return enc.embeddings[0], None if enc.class_scores is None else enc.class_scores[0]

    def stored_vectors(self, sha: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The vectors the library holds for content hash ``sha`` (an indexed file with these bytes), or None.
        Indexing made them from the same bytes through the same read and model stages (check_model: the same
        model), so a query image that is in the library costs a lookup instead of a decode and forward pass."""
        for state in self.store.by_sha([sha]).get(sha, [])[:3]:
            emb, cls = self.store.vectors([state.id])
            if len(emb):
                return emb[0], None if cls is None else cls[0]
        return None

    def query_bytes(self, q: Query) -> bytes:
        """The query image's bytes: the file, the bytes given or the URL's, under the settings' limits."""
        s = self.settings
        if q.kind == "image_url":
            from lookalike.io.fetch import fetch_url  # here: only a URL query loads http.client and ssl

            return fetch_url(str(q.value), allow_private=s.allow_private_urls, timeout=s.url_timeout_s,
                             max_bytes=s.max_upload_mb * 1_000_000)
        if q.kind == "image_bytes":
            return q.value  # type: ignore[return-value]
        return read_file(str(q.value), s.max_file_mb * 1_000_000)

    def load_query(self, q: Query, min_side: int | None):  # type: ignore[no-untyped-def]
        """The query image read (file, bytes or URL under the settings' limits) and decoded."""
        return decode(self.query_bytes(q), min_side=min_side, max_pixels=self.settings.max_pixels)

    def check_model(self) -> None:
        """Refuse to compare the model's vectors with the index's when another model built it."""
        stored = ModelIdentity.stored(self.store.model_info())
        reason = stored.mismatch(self.model) if stored else None
        if reason:
            raise ModelMismatch(reason)

    def results(self, hits: Sequence[Hit]) -> list[Result]:
        infos = {i.id: i for i in self.store.get([h.id for h in hits])}
        return [self._result(infos[h.id], h.score) for h in hits if h.id in infos]

    def _result(self, info: ImageInfo, score: float) -> Result:
        return Result(id=info.id, path=info.path, score=score, tags=self.tag_dicts(info.tags), width=info.width,
                      height=info.height, folder=info.folder, taken_at=info.taken_at, camera=info.camera,
                      texts=dict(info.texts), mtime=info.mtime)

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
        """Teach ``word`` from examples (image files, folders, ids or "id:N") and counter-examples; teaching
        a known word adds to its examples. Returns the concept as :meth:`concepts` lists it."""
        from lookalike.models.concepts import check_word
        from lookalike.search.concepts import explain_concept
        from lookalike.search.teach import resolve, teach

        w = check_word(word)
        if not examples and not counter:
            raise LookalikeError(f"give examples of {word!r}: image files, folders or image ids")
        skipped: list[tuple[str, str]] = []  # unreadable files of example folders, left out
        pos = resolve(self.store, examples, self.embed_files, skipped=skipped)
        neg = resolve(self.store, counter, self.embed_files, positive=False, skipped=skipped)
        if not pos and skipped:
            raise LookalikeError(f"no example of {word!r} could be read: {skipped[0][0]}: {skipped[0][1]}")
        return {**explain_concept(teach(self.store, w, pos, neg)),
                "skipped": [{"path": p, "reason": why} for p, why in skipped]}

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

    def embed_files(self, paths: Sequence[str]) -> np.ndarray:
        """Image files (examples outside the library) through the library's own read and model stages."""
        self.check_model()
        out = []
        for start in range(0, len(paths), 16):
            images = [self.load_query(Query("image_path", p), min_side=round(self.model.input_size / 0.875)).image
                      for p in paths[start:start + 16]]
            out.append(self.model.encode(images).embeddings)
        return np.vstack(out).astype(np.float32)

    # -- duplicates ------------------------------------------------------------------------------------
    def dupes(self, *, method: str = "verified", threshold: float | None = None, filters: Filters | None = None,
              neighbours: int = 10, progress: bool = False, on_progress=None):  # type: ignore[no-untyped-def]
        """Groups of exact copies and near duplicates (edited copies), the best copy first in each. Methods:
        ``verified`` (default: embeddings + geometric verification), ``embedding``, ``phash``; ``threshold``
        on that method's similarity (default: its calibrated zero-false-positive point). Changes nothing."""
        from lookalike.search.dupes import find_duplicates

        return find_duplicates(self.store, self.settings, method=method, threshold=threshold, filters=filters,
                               neighbours=neighbours, progress=progress, on_progress=on_progress)

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

    # -- people (search/people.py) ------------------------------------------------------------------------
    def update_people(self, *, full: bool = False, progress: bool = False):  # type: ignore[no-untyped-def]
        """Cluster the faces that have no person yet (``full``: the unnamed people's faces too)."""
        from lookalike.search.people import update_people

        return update_people(self.store, full=full, progress=progress)

    def people(self, *, min_faces: int = 1, update: bool = True):  # type: ignore[no-untyped-def]
        """The people, most faces first (faces still waiting for a person are clustered first)."""
        from lookalike.search import people

        if update and people.stale(self.store):
            people.update_people(self.store)
        return PeopleList(people.list_people(self.store, min_faces=min_faces), self.store)  # shows in Jupyter

    def person_faces(self, person: int | str):  # type: ignore[no-untyped-def]
        from lookalike.search.people import person_faces

        return person_faces(self.store, person)

    def image_people(self, image_id: int):  # type: ignore[no-untyped-def]
        """The faces of an image with their people: [(FaceRef, person id or None, name or None)]."""
        from lookalike.search.people import image_people

        self.get(image_id)  # NotFound for an unknown id
        return image_people(self.store, image_id)

    def name_person(self, person: int | str, name: str):  # type: ignore[no-untyped-def]
        """Name a person (id or current name); a name another person has merges the two."""
        from lookalike.search.people import name_person

        return name_person(self.store, person, name)

    def name_face(self, image_id: int, index: int, name: str):  # type: ignore[no-untyped-def]
        """Move one face (image id, face index) to the person called ``name`` (a split when it is new)."""
        from lookalike.search.people import name_face

        return name_face(self.store, image_id, index, name)

    def unname_person(self, person: int | str):  # type: ignore[no-untyped-def]
        from lookalike.search.people import unname

        return unname(self.store, person)

    # -- records -----------------------------------------------------------------------------------------
    def browse(self, filters: Filters | None = None, *, offset: int = 0, limit: int = 50) -> tuple[list[Result], int]:
        """One page of the library, newest first by date taken (file time without EXIF), and how many images
        pass ``filters`` in all. Scores are 0: nothing is ranked."""
        ids, total = self.store.browse(filters, offset, limit)
        return self.results([Hit(i, 0.0) for i in ids]), total

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
        rows = self.store.people()
        stats["people"] = {"people": len(rows), "named": sum(1 for r in rows if r.name)}
        return stats

    def close(self) -> None:
        if self._owns_store and "store" in self.__dict__:
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
