"""All settings in one place: defaults, overridden by environment variables, overridden by CLI flags.

Environment variables: LOOKALIKE_LIBRARY, LOOKALIKE_DB, LOOKALIKE_READ_DB (comma separated),
LOOKALIKE_MODEL, LOOKALIKE_DEVICE, LOOKALIKE_ENGINE, LOOKALIKE_THREADS, LOOKALIKE_BATCH_SIZE, LOOKALIKE_WORKERS, LOOKALIKE_MAX_PIXELS,
LOOKALIKE_MAX_UPLOAD_MB, LOOKALIKE_MAX_FILE_MB, LOOKALIKE_ALLOW_PRIVATE_URLS, LOOKALIKE_FOLLOW_SYMLINKS, LOOKALIKE_TOKEN, LOOKALIKE_WRITE_TOKEN, LOOKALIKE_INDEX_ROOTS (os.pathsep
separated), LOOKALIKE_CORS_ORIGINS (comma separated), LOOKALIKE_ALLOWED_HOSTS (comma separated), LOOKALIKE_OCR, LOOKALIKE_FACES, LOOKALIKE_COPY_FEATURES, LOOKALIKE_VECTOR_INDEX, LOOKALIKE_NPROBE,
LOOKALIKE_WATCH_DEBOUNCE, LOOKALIKE_QUARANTINE, LOOKALIKE_CLAIM_LEASE, LOOKALIKE_QUERY_BATCHING.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from collections.abc import Callable
from pathlib import Path


def default_library_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("lookalike", appauthor=False)) / "library"


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A setting's value is wrong: argparse shows the message as it is (a flag's type), ``from_env`` makes a
    one-line error of it naming the variable."""


def count(least: int, most: int = 2**31 - 1) -> Callable[[str], int]:
    """A parser (and argparse type) of whole numbers from ``least`` to ``most``: --limit 0 or -3, or
    LOOKALIKE_THREADS=abc, is a usage error, and so is a number no store or array can hold."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise BadValue(f"want a whole number, not {text!r}") from None
        if n < least:
            raise BadValue(f"must be at least {least}, not {n}")
        if n > most:
            raise BadValue(f"must be at most {most:,}, not {n:,}")
        return n

    parse.__name__ = "number"
    return parse


def seconds(least: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            s = float(text)
        except ValueError:
            raise BadValue(f"want a number of seconds, not {text!r}") from None
        if not math.isfinite(s) or s < least:
            raise BadValue(f"must be a finite number of seconds, at least {least:g}, not {text!r}")
        return s

    return parse


_DEVICE = re.compile(r"cpu|auto|cuda(?::[0-9]{1,3})?")


def device(text: str) -> str:
    """cpu, cuda, cuda:N or auto (torch's own error for "tpu" reached the user as a traceback)."""
    if not _DEVICE.fullmatch(text.strip()):
        raise BadValue(f"must be cpu, cuda, cuda:N or auto, not {text!r}")
    return text.strip()


DEFAULT_MODEL = "efficientnet-lite0"
VECTOR_INDEX_KINDS = ("auto", "flat", "ivf", "ivf-sq8", "ivf-sq8-fast", "ivf-pca-sq8", "ivf-pqfs-sq8", "ivf-pq", "hnsw", "hnsw-sq8")  # stores/vectors.py
DEFAULT_MAX_FILE_MB = 200  # io/read.py reads no file larger than this (Settings.max_file_mb)
DUPES_METHODS = ("verified", "embedding", "phash")  # search/dupes.py; the first is the default


ENV_VARS: dict[str, tuple[str, Callable[[str], object]]] = {  # variable -> (setting, parser); help: shell.py
    "LOOKALIKE_LIBRARY": ("library", Path),
    "LOOKALIKE_DB": ("db", str),
    "LOOKALIKE_READ_DB": ("read_db", lambda v: tuple(u.strip() for u in v.split(",") if u.strip())),
    "LOOKALIKE_MODEL": ("model", str),
    "LOOKALIKE_DEVICE": ("device", device),
    "LOOKALIKE_ENGINE": ("engine", str),
    "LOOKALIKE_THREADS": ("threads", count(0)),  # 0: chosen (Settings.model_threads)
    "LOOKALIKE_BATCH_SIZE": ("batch_size", count(0)),
    "LOOKALIKE_WORKERS": ("workers", count(0)),
    "LOOKALIKE_MAX_PIXELS": ("max_pixels", count(1)),
    "LOOKALIKE_MAX_UPLOAD_MB": ("max_upload_mb", count(1)),
    "LOOKALIKE_ALLOW_PRIVATE_URLS": ("allow_private_urls", _env_bool),
    "LOOKALIKE_FOLLOW_SYMLINKS": ("follow_symlinks", _env_bool),
    "LOOKALIKE_MAX_FILE_MB": ("max_file_mb", count(1)),
    "LOOKALIKE_TOKEN": ("token", str),
    "LOOKALIKE_WRITE_TOKEN": ("write_token", str),
    "LOOKALIKE_INDEX_ROOTS": ("index_roots", lambda v: tuple(r for r in v.split(os.pathsep) if r.strip())),
    "LOOKALIKE_CORS_ORIGINS": ("cors_origins", lambda v: tuple(o.strip() for o in v.split(",") if o.strip())),
    "LOOKALIKE_ALLOWED_HOSTS": ("allowed_hosts", lambda v: tuple(h.strip() for h in v.split(",") if h.strip())),
    "LOOKALIKE_OCR": ("ocr", _env_bool),
    "LOOKALIKE_FACES": ("faces", _env_bool),
    "LOOKALIKE_COPY_FEATURES": ("copy_features", _env_bool),
    "LOOKALIKE_VECTOR_INDEX": ("vector_index", str),
    "LOOKALIKE_NPROBE": ("nprobe", count(0)),
    "LOOKALIKE_WATCH_DEBOUNCE": ("watch_debounce_s", seconds(0)),
    "LOOKALIKE_QUARANTINE": ("quarantine", str),
    "LOOKALIKE_CLAIM_LEASE": ("claim_lease_s", seconds(1)),
    "LOOKALIKE_QUERY_BATCHING": ("query_batching", _env_bool),
}


@dataclass(frozen=True)
class Settings:
    library: Path = field(default_factory=default_library_dir)
    db: str | None = None  # postgresql://... ; None means the embedded store in `library`
    read_db: tuple[str, ...] = ()  # replicas that serve searches
    model: str | None = None  # None: the model that built the index, else DEFAULT_MODEL
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    batch_size: int = 0  # images per forward pass when indexing; 0 = by device (Settings.index_batch)
    workers: int = 0  # decoding threads; 0 = choose from the CPU count
    max_pixels: int = 100_000_000  # decompression-bomb guard
    max_file_mb: int = DEFAULT_MAX_FILE_MB  # files larger than this are skipped when indexing (never read whole)
    max_upload_mb: int = 20  # REST uploads and URL downloads
    url_timeout_s: float = 10.0
    allow_private_urls: bool = False
    follow_symlinks: bool = False  # index: follow symlinks that lead outside the indexed folders (io/crawl.py)
    token: str | None = None  # REST API bearer token
    write_token: str | None = None  # REST: required by endpoints that write or cost minutes (default: token)
    tags_per_image: int = 10  # top classes kept as an image's tags
    threads: int = 0  # inference threads (torch intra-op / ONNX Runtime); 0 = model_threads() chooses
    engine: str = "auto"  # inference engine: auto (onnx on CPU when installed, else torch) | torch | onnx
    index_roots: tuple[str, ...] = ()  # REST indexing jobs only inside these folders; () = the user's home
    cors_origins: tuple[str, ...] = ()  # REST API: origins allowed cross-site; () = CORS off
    allowed_hosts: tuple[str, ...] = ()  # REST API on loopback: Host names besides this machine's (a reverse proxy's)
    ocr: bool = False  # index: read the text inside photos (RapidOCR; optional extra)
    faces: bool = False  # index: detect faces and store their embeddings (dlib; optional extra)
    copy_features: bool = False  # index: keep ORB features + a 320-px gray (~30 KB/image): dupes screens pairs without SIFT
    captions: bool = True  # index: an automatic caption from the top tags ("a photo of a tabby cat")
    vector_index: str = "auto"  # embedded store: auto | flat | ivf | ivf-sq8 | ivf-sq8-fast | ivf-pca-sq8 | ivf-pqfs-sq8 | ivf-pq | hnsw | hnsw-sq8
    nprobe: int = 0  # IVF clusters a query probes (HNSW: efSearch); 0 = the index's default
    watch_debounce_s: float = 2.0  # watch: seconds of quiet that end a burst of changes (watch.py)
    claim_lease_s: float = 120.0  # index: a killed indexer's claimed files go to others this long after (stores/claims.py)
    watch_max_wait_s: float = 30.0  # watch: a burst is indexed at the latest this long after its first change
    quarantine: str | None = None  # the web page's duplicate actions move copies here; None: the desktop trash
    query_batching: bool = True  # concurrent image queries share forward passes (models/batching.py)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for var, (name, conv) in ENV_VARS.items():
            if env.get(var):
                try:
                    values[name] = conv(env[var])
                except BadValue as err:
                    from lookalike.errors import LookalikeError

                    raise LookalikeError(f"the environment variable {var}: {err}") from None
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise TypeError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = Path(value) if name == "library" else value
        settings = cls(**values)  # type: ignore[arg-type]
        return replace(settings, library=Path(settings.library).expanduser())

    def model_threads(self, device: str = "cpu") -> int:
        """Inference threads: the setting, else half the usable cores on the CPU (at least one), so that the
        indexer's decoding threads have the other half (a phone JPEG costs about twice its forward pass to
        decode). Measured on 2 cores, ``lookalike index`` of 64 phone JPEGs, back to back: one ONNX Runtime
        thread 5.9 images/s at 48.6 ms of CPU per image, two threads 4.7 images/s at 60.9 ms (two threads
        wait on each other while the decoders hold the cores). 0 (the engine's default) on a GPU."""
        if self.threads or device.startswith("cuda"):
            return self.threads
        from lookalike.models.onnxrt import cores

        return max(1, cores() // 2)

    def index_batch(self, device: str = "cpu") -> int:
        """Images per forward pass (and per work claim) when indexing: the setting, else 32 on a GPU and 8 on
        the CPU. On the CPU a larger batch is hardly cheaper per image (ONNX Runtime, one thread: 12.2 vs 11.7
        ms of CPU per image at 32 and 8), but the first forward pass waits for a whole batch to be decoded and
        the last one runs with the decoders idle, and the batches in flight hold their pixels and the
        engine's activations. ``bench/index_throughput.py --batch-size B`` on 2 cores, idle machine, one run
        each: 64 phone JPEGs 39.3 / 45.8 / 50.0 / 51.4 images/s at B = 32 / 16 / 8 / 4, peak RSS 543 / 340 /
        237 / 190 MB; 256 JPEGs 51.4 vs 54.9 images/s at 32 vs 8 (RSS 549 vs 232 MB)."""
        if self.batch_size:
            return self.batch_size
        return 32 if device.startswith("cuda") else 8

    def decode_workers(self, device: str = "cpu") -> int:
        """Decoding threads: the setting, else every core beside a GPU model (there the CPU does nothing but
        decode), else one per core up to 8 beside a CPU model (whose engine sleeps instead of spinning when
        idle, so the cores stay busy with whichever is runnable)."""
        if self.workers:
            return self.workers
        if device.startswith("cuda"):
            return max(2, os.cpu_count() or 2)
        return max(2, min(8, os.cpu_count() or 2))
