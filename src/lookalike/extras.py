"""Per-image analyses beyond the image model, run at indexing time: automatic captions (always, from the
tags: cheap), text in photos (``--ocr``), faces (``--faces``) and copy-screening features
(``--copy-features``, search/verify.py). The indexer calls :class:`Extras` from its
decoding threads, so OCR and face detection overlap with the model's batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from lookalike.config import Settings
from lookalike.io.read import Decoded, decode
from lookalike.stores.base import FaceRecord

EXTRAS_MIN_SIDE = 1024  # JPEGs are decoded again at least this large for OCR and faces
CAPTION_SECOND = 0.25  # the second tag joins the caption when its probability reaches this
CAPTION_MIN = 0.05  # below this top probability the caption says nothing specific


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def caption(tags: Sequence[tuple[int, float]], vocab) -> str:  # type: ignore[no-untyped-def]
    """"a photo of a tabby cat" (or "... of a tabby cat or a tiger cat") from an image's top tags."""
    if not tags or tags[0][1] < CAPTION_MIN:
        return ""
    names = [str(vocab.describe(tags[0][0])["name"])]
    if len(tags) > 1 and tags[1][1] >= CAPTION_SECOND:
        names.append(str(vocab.describe(tags[1][0])["name"]))
    return "a photo of " + " or ".join(f"{_article(n)} {n}" for n in names)


@dataclass
class ExtraResult:
    texts: dict[str, str] = field(default_factory=dict)
    faces: list[FaceRecord] = field(default_factory=list)
    copy_features: bytes | None = None  # search/verify.py compact_features
    kinds: tuple[str, ...] = ()
    error: str | None = None


class Extras:
    """The optional analyses ``settings`` asks for; models load on first use."""

    def __init__(self, settings: Settings) -> None:
        self.kinds: tuple[str, ...] = tuple(k for k, on in (("ocr", settings.ocr), ("faces", settings.faces),
                                                           ("copies", settings.copy_features)) if on)
        self.max_pixels = settings.max_pixels
        self._vocab = None
        if "ocr" in self.kinds:
            from lookalike.models.ocr import ocr_engine

            self.ocr = ocr_engine()  # fail early, with a one-line error, when the extra is not installed
        if "faces" in self.kinds:
            from lookalike.models.faces import face_model

            self.face_model = face_model()

    def __bool__(self) -> bool:
        return bool(self.kinds)

    @property
    def vocab(self):  # type: ignore[no-untyped-def]
        """What captions need of the vocabulary: the classes' names. Not ``Vocabulary()``, whose word indexes
        (1.1 s of CPU to build, under a profiler) every indexing process paid at start-up for nothing."""
        if self._vocab is None:
            from lookalike.models.vocab import ClassNames

            self._vocab = ClassNames()
        return self._vocab

    def caption(self, tags: Sequence[tuple[int, float]]) -> str:
        return caption(tags, self.vocab)

    def analyse(self, d: Decoded, data: bytes | None = None) -> ExtraResult:
        """OCR text, faces and copy features of one decoded image. Never raises: a failure is reported in
        ``error`` and leaves the analysis not done (a later run retries it)."""
        out = ExtraResult()
        if not self.kinds:
            return out
        try:
            if "copies" in self.kinds:  # on the image as decoded for the model (>= 256 px): no second decode
                from lookalike.search.verify import compact_features

                out.copy_features = compact_features(d.image)
            if "ocr" in self.kinds or "faces" in self.kinds:
                image = self._large(d, data)
            if "ocr" in self.kinds:
                out.texts["ocr"] = self.ocr.text(image)
            if "faces" in self.kinds:
                out.faces = [FaceRecord(f.box, f.embedding) for f in self.face_model.faces(image, (d.width, d.height))]
            out.kinds = self.kinds
        except Exception as err:  # noqa: BLE001 - an analysis failing never loses the image
            out = ExtraResult(error=f"{type(err).__name__}: {err}")
        return out

    def _large(self, d: Decoded, data: bytes | None) -> Image.Image:
        """The image at a size fit for OCR and faces (JPEGs decoded for the model may be reduced)."""
        img = d.image
        if data is not None and min(img.size) < min(EXTRAS_MIN_SIDE, d.width, d.height):
            img = decode(data, min_side=EXTRAS_MIN_SIDE, max_pixels=self.max_pixels).image
        return img


def warn(path: str, error: str) -> None:
    logging.getLogger("lookalike").warning("extras failed on %s: %s", path, error)
