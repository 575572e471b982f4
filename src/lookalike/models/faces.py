"""Faces: detection and 128-d embeddings with dlib (optional extra: ``dlib-bin`` + ``face-recognition-models``).

The model files come from the ``face_recognition_models`` package folder, found without importing it (its
``__init__`` needs ``pkg_resources``, gone from recent setuptools); ``face_recognition`` itself is not used
(it compiles dlib). Pipeline: HOG frontal face detector -> 5-point shape predictor -> aligned 150x150 chip ->
ResNet descriptor (128-d). Two faces are the same person when their L2 distance is below ~0.6.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.errors import LookalikeError
from lookalike.io.read import rgb_within
from lookalike.models.registry import process_wide

SAME_PERSON = 0.6  # L2 distance between embeddings below which two faces are taken as one person
MIN_FACE = 40  # faces smaller than this (pixels, in the image given) are ignored


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, width, height, in the pixels of the full-size image
    embedding: np.ndarray  # float32 (128,)
    score: float = 0.0  # detector confidence


def models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError("--faces needs the face models: pip install 'lookalike[extras]' "
                             "(dlib-bin, face-recognition-models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceModel:
    def __init__(self, max_side: int = 1024, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError:
            raise LookalikeError("--faces needs dlib: pip install 'lookalike[extras]' (dlib-bin)") from None
        d = models_dir()
        self.max_side = max_side
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.shapes = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat"))
        self._dlib = dlib
        self._lock = threading.Lock()  # dlib's objects are not documented as thread-safe

    def faces(self, image: Image.Image, full_size: tuple[int, int] | None = None) -> list[Face]:
        """Faces in ``image`` (RGB), most confident first. Boxes are scaled to ``full_size`` (width, height) when the
        image given is a reduced copy of a larger original."""
        img, scale = rgb_within(image, self.max_side)
        arr = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
        back = (full_size[0] / img.width) if full_size else 1.0 / scale
        out: list[Face] = []
        with self._lock:
            dets, scores, _ = self.detector.run(arr, self.upsample, 0.0)
            for rect, score in zip(dets, scores):
                if min(rect.width(), rect.height()) < MIN_FACE / (1 + self.upsample):
                    continue
                shape = self.shapes(arr, rect)
                vec = np.asarray(self.encoder.compute_face_descriptor(arr, shape, 0), dtype=np.float32)
                left, top = max(0, rect.left()), max(0, rect.top())
                box = (round(left * back), round(top * back), round(rect.width() * back), round(rect.height() * back))
                out.append(Face(box, vec, float(score)))
        out.sort(key=lambda f: -f.score)
        return out


face_model = process_wide(FaceModel)  # the process-wide face model, loaded on first use


def available() -> bool:
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L2 distances between rows of ``a`` (n, 128) and ``b`` (128,)."""
    return np.linalg.norm(np.atleast_2d(a) - b[None, :], axis=1)
