"""Text inside photos: RapidOCR (PP-OCRv4 ONNX models shipped in ``rapidocr-onnxruntime``; optional extra).

Used at indexing time with ``index --ocr``: the recognised lines become the image's "ocr" text, searchable
like tags ("find the page that mentions markers"). Detection runs first and recognition only on the boxes it
finds, so a photo without text costs one detector pass. Images are scaled so the longer side is at most
``max_side`` before detection (:func:`lookalike.io.read.rgb_within`; RapidOCR's detector itself scales small ones
up, as it wants text a few dozen pixels high).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lookalike.errors import LookalikeError
from lookalike.io.read import rgb_within
from lookalike.models.registry import process_wide

MIN_SCORE = 0.6  # recogniser confidence below which a line is dropped
MIN_CHARS = 2  # lines with fewer letters or digits are dropped (a lone "O" on a cat's fur)


@dataclass(frozen=True)
class TextLine:
    text: str
    score: float
    box: tuple[tuple[float, float], ...]  # four corners, in the pixels of the image given


class OCR:
    def __init__(self, max_side: int = 1280, threads: int = 1) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise LookalikeError("--ocr needs RapidOCR: pip install 'lookalike[extras]' (rapidocr-onnxruntime)") from None
        self.max_side = max_side
        self.engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, print_verbose=False)

    def read(self, image: Image.Image, min_score: float = MIN_SCORE) -> list[TextLine]:
        """Lines of text found in ``image`` (RGB), top to bottom."""
        img, scale = rgb_within(image, self.max_side)
        bgr = np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[:, :, ::-1])
        result, _ = self.engine(bgr, use_cls=False)
        lines = []
        for box, text, score in result or []:
            text = " ".join(str(text).split())
            if sum(ch.isalnum() for ch in text) >= MIN_CHARS and float(score) >= min_score:
                corners = tuple((float(x) / scale, float(y) / scale) for x, y in box)
                lines.append(TextLine(text, float(score), corners))
        lines.sort(key=lambda ln: (min(y for _, y in ln.box), min(x for x, _ in ln.box)))
        return lines

    def text(self, image: Image.Image) -> str:
        return "\n".join(line.text for line in self.read(image))


# the process-wide OCR engine (onnxruntime sessions are safe to call from several threads)
ocr_engine = process_wide(OCR)


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None
