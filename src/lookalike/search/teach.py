"""Teaching words: examples -> a stored concept (lookalike.models.concepts has the classifier).

Examples are indexed ids (``42``, ``"id:42"``), image files, folders (every image below) or a previous
search's ``--json`` output (:func:`examples_from_json`). An indexed file is taken from the store (its
stored embedding); a file outside the library is read and embedded by the library's own model (``embed``,
the same read + model stages as a query image). Each example is kept with its path and embedding, so the
concept can be re-fitted when examples are added (teaching again adds), without the files.

The concept records the model identity (name, version, dim) that made its vectors. When the library's model
changes, :func:`current` re-fits it from its examples' paths (their new vectors in the store, or the files
re-embedded); when no example can be found any more, it is refused with one line saying what to do.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from lookalike.errors import ImageError, LookalikeError, ModelMismatch, NotFound
from lookalike.models.concepts import (
    cross_validate,
    fit_concept,
    library_sample_size,
    seed_of,
)
from lookalike.search.plan import parse_id
from lookalike.stores.base import ConceptExample, ConceptRecord

Embed = Callable[[Sequence[str]], np.ndarray]  # image files -> (n, dim) unit embeddings
Example = str | int
MAX_EXAMPLES = 10_000


def examples_from_json(text: str, source: str = "the JSON") -> list[str]:
    """The result paths of a ``lookalike search --json`` object (or a list of them, or of paths/ids)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LookalikeError(f"{source} is not JSON ({err.msg} at line {err.lineno}); "
                             "expected the output of lookalike search --json") from None
    except RecursionError:
        raise LookalikeError(f"{source}: its JSON is nested too deeply; expected the output of lookalike search "
                             "--json") from None
    items = data.get("results") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise LookalikeError(f"{source} has no \"results\" list; expected the output of lookalike search --json")
    out: list[str] = []
    for it in items:
        if isinstance(it, dict) and isinstance(it.get("path"), str):
            out.append(it["path"])
        elif isinstance(it, dict) and isinstance(it.get("id"), int):
            out.append(f"id:{it['id']}")
        elif isinstance(it, (str, int)) and not isinstance(it, bool):
            out.append(str(it) if isinstance(it, str) else f"id:{it}")
        else:
            raise LookalikeError(f"{source}: a result without a path or a numeric id: {str(it)[:60]}")
    return out


def model_identity(store) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
    info = store.model_info()
    if not info or not info.get("dim"):
        raise LookalikeError("the library has no indexed images yet: index some photos before teaching")
    return info["name"], info.get("version", ""), int(info["dim"])


def resolve(store, items: Sequence[Example], embed: Embed, positive: bool = True,  # type: ignore[no-untyped-def]
            skipped: list[tuple[str, str]] | None = None) -> list[ConceptExample]:
    """Examples as (path, embedding) with their store id when indexed; files not in the library embedded. A file
    found in an example folder that cannot be read is left out and noted in ``skipped`` (path, why), as
    indexing does; a file named itself must be readable."""
    from lookalike.io.crawl import crawl

    ids: list[int] = []
    files: list[str] = []
    from_folders: set[str] = set()
    notes: list[tuple[str, str]] = [] if skipped is None else skipped
    for item in items:
        if isinstance(item, bool):
            raise LookalikeError(f"not an example: {item!r}")
        if isinstance(item, int) or (isinstance(item, str) and item.startswith("id:")):
            ids.append(parse_id(str(item)[3:] if isinstance(item, str) else str(item), item))
            continue
        path = os.path.abspath(os.path.expanduser(os.fspath(item)))
        if os.path.isdir(path):
            problems: list[tuple[str, str]] = []
            found = [e.path for e in crawl([path], lambda p, why: problems.append((p, why)))]
            if not found and problems:
                raise LookalikeError(f"no example could be read in {item}: {problems[0][0]}: {problems[0][1]}")
            if not found:
                raise LookalikeError(f"no images in the folder {item}")
            files += found
            from_folders.update(found)
            notes += problems
        elif os.path.isfile(path):
            files.append(path)
        elif os.path.exists(path):
            from lookalike.io.crawl import not_a_file

            raise LookalikeError(f"example {item}: {not_a_file(path)}")
        else:
            raise NotFound(f"example not found: {item} (give image files, folders or id:N)")
    if len(ids) + len(files) > MAX_EXAMPLES:
        raise LookalikeError(f"at most {MAX_EXAMPLES} examples at once")
    out: list[ConceptExample] = []
    infos = {i.id: i for i in store.get(ids)}
    missing = [i for i in ids if i not in infos]
    if missing:
        raise NotFound(f"no indexed image with id {missing[0]}")
    outside: list[str] = []
    for path in dict.fromkeys(files):
        info = store.get_by_path(path)
        if info is None:
            outside.append(path)
        else:
            infos[info.id] = info
            ids.append(info.id)
    ids = list(dict.fromkeys(ids))
    if ids:
        got = store.vector_map(ids)
        lacking = [infos[i].path for i in ids if i not in got]
        if lacking:
            raise LookalikeError(f"{lacking[0]} has no vectors yet (re-index after the model change, then teach)")
        out += [ConceptExample(infos[i].path, positive, got[i], image_id=i) for i in ids]
    if outside:
        try:
            emb = list(embed(outside))
            kept = outside
        except ImageError:  # one at a time, to leave out the unreadable files of folders (a named one: the error)
            kept, emb = [], []
            for path in outside:
                try:
                    emb.append(embed([path])[0])
                except ImageError as err:
                    if path not in from_folders:
                        raise
                    notes.append((path, str(err)))
                    continue
                kept.append(path)
        out += [ConceptExample(p, positive, e) for p, e in zip(kept, emb)]
    return out


def _ids_by_path(store, paths: Sequence[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for p in paths:
        info = store.get_by_path(p)
        if info is not None:
            out[p] = info.id
    return out


def teach(store, word: str, positives: Sequence[ConceptExample], counter: Sequence[ConceptExample] = ()  # type: ignore[no-untyped-def]
          ) -> ConceptRecord:
    """Add examples to ``word`` (a new concept, or one taught before) and re-fit it; stored, and returned."""
    both = sorted({e.path for e in positives} & {e.path for e in counter})
    if both:
        raise LookalikeError(f"{both[0]} is given both as an example of {word!r} and as a counter-example (--not)"
                             + (f", and {len(both) - 1} more" if len(both) > 1 else ""))
    name, version, dim = model_identity(store)
    old = store.concept(word)
    examples: dict[str, ConceptExample] = {}
    if old is not None:
        if (old.model, old.model_version, old.dim) != (name, version, dim):
            old = refit_examples(store, old, None)
        examples = {e.path: e for e in old.examples}
    for e in [*positives, *counter]:  # the latest word on a path wins (an example can become a counter-example)
        examples[e.path] = e
    if not any(e.positive for e in examples.values()):
        raise LookalikeError(f"give at least one example of {word!r} (not only counter-examples)")
    return _fit_and_store(store, word, list(examples.values()), (name, version, dim),
                          created=old.created_at if old else None)


def _fit_and_store(store, word: str, examples: list[ConceptExample], identity: tuple[str, str, int],  # type: ignore[no-untyped-def]
                   created: float | None = None) -> ConceptRecord:
    pos = np.stack([e.embedding for e in examples if e.positive]).astype(np.float32)
    neg_list = [e.embedding for e in examples if not e.positive]
    neg = np.stack(neg_list).astype(np.float32) if neg_list else None
    if pos.shape[1] != identity[2]:
        raise ModelMismatch(f"the examples of {word!r} have {pos.shape[1]}-d vectors, the library {identity[2]}-d")
    exclude = {e.image_id for e in examples if e.image_id is not None}
    exclude |= set(_ids_by_path(store, [e.path for e in examples if e.image_id is None]).values())
    seed = seed_of(word)
    unlabelled = max(store.count() - len(exclude), 0)
    _, lib = store.sample_vectors(library_sample_size(store.count(), len(exclude)), seed=seed, exclude=sorted(exclude))
    model = fit_concept(pos, neg, lib)
    validation = cross_validate(pos, neg, lib, seed=seed, library_size=unlabelled).as_dict()
    now = time.time()
    rec = ConceptRecord(word=word, model=identity[0], model_version=identity[1], dim=identity[2],
                        weights=model.w, bias=model.b, examples=examples, validation=validation,
                        created_at=created or now, updated_at=now)
    store.put_concept(rec)
    return rec


def refit_examples(store, rec: ConceptRecord, embed: Embed | None) -> ConceptRecord:  # type: ignore[no-untyped-def]
    """``rec``'s examples with vectors of the library's current model: from the store by path, else the
    file re-embedded (when ``embed`` is given and the file is still there). Refuses when no example of the
    word can be found."""
    found = _ids_by_path(store, [e.path for e in rec.examples])
    got = store.vector_map(list(found.values()))
    out: list[ConceptExample] = []
    files: list[ConceptExample] = []
    for e in rec.examples:
        i = found.get(e.path)
        if i is not None and i in got:
            out.append(ConceptExample(e.path, e.positive, got[i], image_id=i))
        elif embed is not None and os.path.isfile(e.path):
            files.append(e)
    if files:
        emb = embed([e.path for e in files])
        out += [ConceptExample(e.path, e.positive, v) for e, v in zip(files, emb)]
    if not any(e.positive for e in out):
        raise ModelMismatch(f"{rec.word!r} was taught on {rec.model} vectors and none of its examples can be found "
                            f"with the library's new model: teach it again (lookalike teach {_quoted(rec.word)} ...)")
    rec.examples = out
    return rec


def current(store, rec: ConceptRecord, embed: Embed | None = None) -> ConceptRecord:  # type: ignore[no-untyped-def]
    """``rec`` itself when it matches the library's model, else re-fitted from its examples (and stored)."""
    identity = model_identity(store)
    if (rec.model, rec.model_version, rec.dim) == identity:
        return rec
    refit_examples(store, rec, embed)
    return _fit_and_store(store, rec.word, rec.examples, identity, created=rec.created_at)


def _quoted(word: str) -> str:
    return f'"{word}"' if " " in word else word
