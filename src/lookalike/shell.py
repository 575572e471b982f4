"""Command-line conventions every subcommand follows, applied to the whole parser in one pass (:func:`finish`):

- ``-v/--verbose`` (info log lines on stderr), ``--debug`` (debug log lines; tracebacks of unexpected errors) and
  ``-q/--quiet`` (no progress bars, no hints) on every command;
- help with examples and the environment variables (``lookalike COMMAND --help``);
- shell completion scripts from the parser itself (``lookalike completion bash|zsh|fish|tcsh``, via shtab), with
  file and folder completion on the arguments that take them;
- ``--paths`` output: one path a line for ``xargs``/``feh``; a path holding a newline (or another control
  character) is written in the shell's ``$'...'`` quoting, so one line is always one path; ``-0`` writes raw
  NUL-terminated paths instead (``xargs -0``); it replaces the usual output, so ``--paths`` with ``--json`` is a
  usage error;
- ``--grid OUT.png``: checked before anything is searched (:func:`image_out`), so a typo costs no search.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence

from lookalike.config import ENV_VARS
from lookalike.errors import RuntimeFailure

SHELLS = ("bash", "zsh", "fish", "tcsh")

# what each variable sets (config.ENV_VARS maps the names to settings; a test keeps the two in step)
ENV_HELP = {
    "LOOKALIKE_LIBRARY": "library folder (default: the user data folder)",
    "LOOKALIKE_DB": "postgresql:// URL: keep the index in PostgreSQL",
    "LOOKALIKE_READ_DB": "read replicas for searches, comma separated",
    "LOOKALIKE_MODEL": "model (efficientnet-lite0, -lite1, -lite2, clip:ARCH:WEIGHTS)",
    "LOOKALIKE_DEVICE": "cpu, cuda, cuda:N or auto",
    "LOOKALIKE_ENGINE": "auto, torch or onnx",
    "LOOKALIKE_THREADS": "inference threads (0 = half the cores on the CPU)",
    "LOOKALIKE_BATCH_SIZE": "images per model batch",
    "LOOKALIKE_WORKERS": "decoding threads",
    "LOOKALIKE_MAX_PIXELS": "decompression-bomb guard (pixels)",
    "LOOKALIKE_MAX_UPLOAD_MB": "largest uploaded or fetched query image",
    "LOOKALIKE_ALLOW_PRIVATE_URLS": "1: URL queries may fetch from private addresses",
    "LOOKALIKE_FOLLOW_SYMLINKS": "1: index follows symlinks that lead outside the indexed folders",
    "LOOKALIKE_MAX_FILE_MB": "largest image file read, in MB (default 200)",
    "LOOKALIKE_TOKEN": "the API token serve requires",
    "LOOKALIKE_WRITE_TOKEN": "the token serve requires to index, find duplicates or remove copies",
    "LOOKALIKE_INDEX_ROOTS": "folders the API may index (path-separator separated)",
    "LOOKALIKE_CORS_ORIGINS": "origins allowed to call the API, comma separated",
    "LOOKALIKE_ALLOWED_HOSTS": "Host names the server answers to on loopback besides this machine's (a proxy's)",
    "LOOKALIKE_OCR": "1: index reads the text in photos",
    "LOOKALIKE_FACES": "1: index detects faces",
    "LOOKALIKE_COPY_FEATURES": "1: index keeps copy features (faster dupes, ~30 KB/image)",
    "LOOKALIKE_VECTOR_INDEX": "embedded store's vector index kind",
    "LOOKALIKE_NPROBE": "IVF clusters (HNSW: efSearch) a query probes",
    "LOOKALIKE_WATCH_DEBOUNCE": "watch: seconds of quiet that end a burst of changes (default 2)",
    "LOOKALIKE_QUARANTINE": "serve: the folder duplicate copies are moved to (default: the desktop trash)",
    "LOOKALIKE_CLAIM_LEASE": "index: seconds before a killed indexer's files go to the others (default 120)",
    "LOOKALIKE_QUERY_BATCHING": "concurrent image queries share forward passes (default 1; 0 = off)",
}

EXAMPLES = {
    "index": """\
  lookalike index ~/Pictures ~/Phone        # recursive and incremental: rerun any time
  lookalike index ~/Scans --ocr             # also read the text inside the photos
  lookalike watch ~/Pictures                # or keep the index up to date as files change""",
    "search": """\
  lookalike search cat                      # keywords
  lookalike search ~/query.jpg -n 20        # by example
  lookalike search id:42                    # more like an indexed photo
  lookalike search ~/query.jpg --by tags    # by visual words (class scores)
  lookalike search dog --after 2023-01-01 --camera pixel --min-size 1000
  lookalike search beach --paths | xargs -d '\\n' feh   # paths only, one a line
  lookalike search cat --json | jq '.results[].path'""",
    "describe": """\
  lookalike describe captions.json          # {"path": "text", ...}
  lookalike describe notes.csv              # path,description""",
    "dupes": """\
  lookalike dupes                           # groups, best copy first; changes nothing
  lookalike dupes --trash                   # every copy but the best to the desktop trash (undo: lookalike undo)
  lookalike dupes --move-to ~/dupes         # or into a folder
  lookalike dupes --paths | xargs -d '\\n' ls -l   # the copies that are not the best""",
    "eval": """\
  lookalike eval ~/some-photos              # copy detection per method and edit
  lookalike eval ~/photos --labelled ~/labelled --k 10""",
    "info": """\
  lookalike info --json""",
    "serve": """\
  lookalike serve                           # http://127.0.0.1:8000/
  lookalike serve --watch ~/Pictures        # and keep the index up to date
  lookalike serve --host 0.0.0.0 --token s3cret""",
    "watch": """\
  lookalike watch ~/Pictures ~/Phone        # index now, then as files appear, change, move or go
  lookalike watch ~/Pictures --json         # one JSON line per batch of changes
  lookalike serve --watch ~/Pictures        # the same, while serving the web page""",
    "completion": """\
  lookalike completion bash > ~/.local/share/bash-completion/completions/lookalike
  lookalike completion zsh > ~/.zfunc/_lookalike     # with fpath+=~/.zfunc in ~/.zshrc
  lookalike completion fish > ~/.config/fish/completions/lookalike.fish""",
}

FILE_ARGS = {"file", "image", "face", "grid"}  # complete as files
DIR_ARGS = {"paths", "watch", "folder", "library", "move_to", "labelled", "distractors", "dir", "index_root", "quarantine"}


ENV_SHORT = "\n".join(textwrap.wrap("environment (what each sets: lookalike --help): " + ", ".join(ENV_VARS), 100))



class OutputError(RuntimeFailure):
    """Standard output cannot be written ("> /dev/full", a full disk under a redirect): said as that, not as a
    failure of the library."""


class _GuardedOutput:
    """Standard output whose write errors (other than a closed pipe) are :class:`OutputError`."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self.failed = False

    def _guard(self, fn, *a):  # type: ignore[no-untyped-def]
        try:
            return fn(*a)
        except BrokenPipeError:
            raise
        except OSError as err:
            self.failed = True
            raise OutputError(f"cannot write the output: {err.strerror or err}") from None

    def write(self, text: str) -> int:
        return self._guard(self._inner.write, text)

    def flush(self) -> None:
        self._guard(self._inner.flush)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)


@contextlib.contextmanager
def guarded_stdout():  # type: ignore[no-untyped-def]
    """While a command runs, a failed write to standard output is one :class:`OutputError`; afterwards what is
    left in its buffer is dropped (at exit Python would try to flush it again and print "Exception ignored")."""
    guard = _GuardedOutput(sys.stdout)
    sys.stdout = guard  # type: ignore[assignment]
    try:
        yield guard
    finally:
        sys.stdout = guard._inner
        if guard.failed:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(obj: object) -> str:
    """``obj`` as one line of JSON that is valid UTF-8: non-ASCII as it is, but a file name's bytes that are not
    UTF-8 (held as lone surrogates) as ``\\udcXX`` escapes, which JSON readers take (``json.loads`` gives the
    same name back); written raw they made the output undecodable."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))


def print_skipped(skipped: Sequence[tuple[str, str]], most: int = 20, prefix: str = "") -> None:
    """The files a run skipped, one line each on stderr (at most ``most``, then how many more)."""
    from lookalike.display import quote_path

    for path, reason in skipped[:most]:
        print(f"{prefix}skipped {quote_path(path)}: {reason}", file=sys.stderr)
    if len(skipped) > most:
        print(f"{prefix}... and {len(skipped) - most} more skipped", file=sys.stderr)
    sys.stderr.flush()


def env_epilog() -> str:
    width = max(len(v) for v in ENV_VARS)
    return "environment:\n" + "\n".join(f"  {v:<{width}}  {ENV_HELP.get(v, '')}" for v in ENV_VARS)


def add_verbosity(p: argparse.ArgumentParser) -> None:
    have = {s for a in p._actions for s in a.option_strings}
    g = p.add_argument_group("output")
    if "-v" not in have:
        g.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr (what is being done)")
    if "--debug" not in have:
        g.add_argument("--debug", action="store_true", help="debug log lines, and tracebacks of unexpected errors")
    if "-q" not in have:
        g.add_argument("-q", "--quiet", action="store_true", help="no progress bars, no hints: results only")


def add_paths_output(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--paths", action="store_true", help=f"print only {what}, one a line (for xargs, feh; "
                   "not with --json)")
    p.add_argument("-0", "--null", action="store_true", help="with --paths: end each path with NUL (xargs -0)")
    p.set_defaults(paths_output=True)


def check_outputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors between output flags: ``--paths`` replaces the output that ``--json`` would format."""
    if getattr(args, "paths_output", False) and args.paths is True and getattr(args, "json", False):
        parser.error("give --paths or --json, not both (--json holds the paths too)")
    if getattr(args, "paths_output", False) and args.null and args.paths is not True:
        parser.error("-0/--null goes with --paths (it ends each path with NUL instead of a newline)")


IMAGE_OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def image_out(text: str) -> str:
    """An argparse type: a new image file to write (``--grid``): a known suffix, in a folder that exists."""
    path = os.path.expanduser(text)
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name such as {os.path.join(text, 'grid.png')}")
    if os.path.splitext(path)[1].lower() not in IMAGE_OUT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: the file name must end in {', '.join(IMAGE_OUT_SUFFIXES)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    return path


image_out.__name__ = "image file"


def finish(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    """Give every subcommand the shared flags, its examples and the environment, and completion hints
    (marked here, turned into shtab's only by ``completion_script``: importing shtab cost every command
    ~0.1 s of start-up)."""
    parser.epilog = env_epilog() + "\n\n'lookalike COMMAND --help' shows a command's options and examples; " \
        "'lookalike completion bash' prints a completion script."
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for name, p in sub.choices.items():
        add_verbosity(p)
        p.formatter_class = argparse.RawDescriptionHelpFormatter
        examples = EXAMPLES.get(name)
        p.epilog = (f"examples:\n{examples}\n\n" if examples else "") + ENV_SHORT
        for action in p._actions:
            if action.dest in FILE_ARGS:
                action.complete_kind = "FILE"  # type: ignore[attr-defined]
            elif action.dest in DIR_ARGS:
                action.complete_kind = "DIRECTORY"  # type: ignore[attr-defined]


def add_completion_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish, tcsh)")
    p.add_argument("shell", choices=SHELLS)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    import shtab

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for p in action.choices.values():
                for a in p._actions:
                    kind = getattr(a, "complete_kind", None)
                    if kind:
                        a.complete = getattr(shtab, kind)  # type: ignore[attr-defined]
    return shtab.complete(parser, shell=shell)


def setup_logging(args: argparse.Namespace) -> None:
    """-v: INFO, --debug: DEBUG, else WARNING; one plain line a message on stderr."""
    level = logging.DEBUG if getattr(args, "debug", False) else \
        logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    log = logging.getLogger("lookalike")
    log.setLevel(level)
    if not any(getattr(h, "_lookalike", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lookalike: %(message)s"))
        handler._lookalike = True  # type: ignore[attr-defined]
        log.addHandler(handler)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars: on a terminal unless -q or --json; always with --progress."""
    if getattr(args, "progress", False):
        return True
    return not getattr(args, "quiet", False) and not getattr(args, "json", False) and sys.stderr.isatty()


def path_line(path: str) -> str:
    """``path`` as one line: as it is, unless it holds a control character; then ``$'...'`` quoted."""
    if not any(ord(c) < 32 or ord(c) == 127 for c in path):
        return path
    out = []
    for c in path:
        if c == "\\" or c == "'":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(c)
    return "$'" + "".join(out) + "'"


def print_paths(paths: Iterable[str], null: bool = False) -> None:
    out = sys.stdout
    for p in paths:
        if null:
            out.write(p + "\0")
        else:
            out.write(path_line(p) + "\n")
    out.flush()
