"""Taught words in both SQL stores: one set of statements (stores/sql.py's dialect), two tables.

``concepts`` holds one row per word (the classifier's weights as little-endian float32 bytes, its bias,
the model identity that made the vectors, the cross-validated estimate as JSON); ``concept_examples`` the
examples and counter-examples (path, float32 embedding, position), removed with their word. A concept is
written whole in one transaction (``put_concept`` replaces it). Ids are not stored: they are store-local,
paths travel (``lookalike migrate`` copies concepts as they are).

``sample_vectors`` draws random library vectors for the classifier's negatives without a scan: random ids
between the smallest and largest image id, fetched by primary key (more drawn while too many fall in gaps),
so teaching costs the same at 1k and 1M photos. Deterministic for a seed and a library state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from lookalike.stores.base import ConceptExample, ConceptRecord, decode_vector, encode_vector
from lookalike.stores.sql import SQLReads

SAMPLE_ROUNDS = 6  # draws of random ids before falling back to reading every id (a very sparse id range)

# (statement, arguments) lists run in one transaction by the store's _execute
Statements = list[tuple[str, Sequence[object]]]


class ConceptSQL(SQLReads):
    """Mixed into a SQL store (``dialect`` and ``_run`` from stores/sql.py) that runs ``_execute``: statements
    in one write transaction."""

    def _execute(self, statements: Statements) -> None:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return self.dialect.sql(sql)

    # -- concepts --------------------------------------------------------------------------------------------
    def put_concept(self, concept: ConceptRecord) -> None:
        c = concept
        stmts: Statements = [
            (self._q("DELETE FROM {t}concepts WHERE word = ?"), [c.word]),
            (self._q("INSERT INTO {t}concepts(word, model, model_version, dim, weights, bias, validation, "
                     "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
             [c.word, c.model, c.model_version, int(c.dim), encode_vector(c.weights), float(c.bias),
              json.dumps(c.validation), float(c.created_at), float(c.updated_at)]),
        ]
        sql = self._q("INSERT INTO {t}concept_examples(word, seq, path, positive, embedding) VALUES (?, ?, ?, ?, ?)")
        stmts += [(sql, [c.word, n, e.path, 1 if e.positive else 0, encode_vector(e.embedding)])
                  for n, e in enumerate(c.examples)]
        self._execute(stmts)

    def concepts(self) -> list[ConceptRecord]:
        return self._concepts(None)

    def concept_words(self) -> list[str]:
        """The taught words alone (every words query asks; the records are read only for the words it holds)."""
        return [r[0] for r in self._run(lambda q: q(self._q("SELECT word FROM {t}concepts ORDER BY word"), ()),
                                        primary=True)]

    def concept(self, word: str) -> ConceptRecord | None:
        found = self._concepts(word)
        return found[0] if found else None

    def _concepts(self, word: str | None) -> list[ConceptRecord]:
        where, args = ("WHERE word = ?", [word]) if word is not None else ("", [])

        def run(q):  # type: ignore[no-untyped-def]
            heads = q(self._q("SELECT word, model, model_version, dim, weights, bias, validation, created_at, "
                              f"updated_at FROM {{t}}concepts {where} ORDER BY word"), args)
            examples = q(self._q("SELECT word, path, positive, embedding FROM {t}concept_examples "
                                 f"{where} ORDER BY word, seq"), args)
            return heads, examples

        heads, examples = self._run(run, primary=True, snapshot=True)
        by_word: dict[str, list[ConceptExample]] = {}
        for w, path, positive, emb in examples:
            by_word.setdefault(w, []).append(ConceptExample(path, bool(positive), decode_vector(bytes(emb))))  # type: ignore[arg-type]
        return [ConceptRecord(word=w, model=m, model_version=v, dim=int(d), weights=decode_vector(bytes(wb)),  # type: ignore[arg-type]
                              bias=float(b), examples=by_word.get(w, []), validation=json.loads(val),
                              created_at=float(ca), updated_at=float(ua))
                for w, m, v, d, wb, b, val, ca, ua in heads]

    def delete_concept(self, word: str) -> bool:
        if self.concept(word) is None:
            return False
        self._execute([(self._q("DELETE FROM {t}concept_examples WHERE word = ?"), [word]),
                       (self._q("DELETE FROM {t}concepts WHERE word = ?"), [word])])
        return True

    # -- a random sample of the library's vectors -------------------------------------------------------------
    def sample_vectors(self, n: int, *, seed: int = 0, exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``n`` (id, embedding) pairs drawn at random from the images with vectors, none in ``exclude``."""
        banned = {int(i) for i in exclude}
        lo, hi, count = self._run(lambda q: q(self._q(
            "SELECT COALESCE(MIN(image_id), 0), COALESCE(MAX(image_id), 0), COUNT(*) FROM {t}vectors"), ()))[0]
        lo, hi, count = int(lo), int(hi), int(count)
        if n <= 0 or count == 0:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        rng = np.random.default_rng(seed % (2**63))
        chosen: dict[int, np.ndarray] = {}
        if count <= 2 * (n + len(banned)):  # small library: sample among every id
            ids = [int(r[0]) for r in self._run(lambda q: q(self._q("SELECT image_id FROM {t}vectors ORDER BY image_id"), ()))]
            pool = [i for i in ids if i not in banned]
            picked = sorted(rng.choice(pool, size=min(n, len(pool)), replace=False).tolist()) if pool else []
            chosen = self._vectors_of(picked)
        else:
            for _ in range(SAMPLE_ROUNDS):
                want = n - len(chosen)
                if want <= 0:
                    break
                density = count / max(hi - lo + 1, 1)
                draw = rng.integers(lo, hi + 1, size=int(want / density * 1.5) + 8)
                fresh = sorted({int(i) for i in draw} - banned - set(chosen))
                got = self._vectors_of(fresh)
                for i in rng.permutation(list(got))[:want] if got else []:
                    chosen[int(i)] = got[int(i)]
        ids = sorted(chosen)[:n]
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.asarray(ids, np.int64), np.stack([chosen[i] for i in ids]).astype(np.float32)

    def _vectors_of(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        sql = "SELECT image_id, embedding FROM {t}vectors WHERE {in}"
        rows = self._run(lambda q: self._in(q, sql, "image_id", list(ids)))
        return {int(i): self.dialect.vector(e) for i, e in rows}
