"""The command line: parse, call the Library, print (a table, or --json). No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from lookalike import __version__
from lookalike.config import DUPES_METHODS, VECTOR_INDEX_KINDS, Settings
from lookalike.errors import LookalikeError

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def deco(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return deco


# -- shared options ------------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", help="library folder (env LOOKALIKE_LIBRARY; default: the user data folder)")
    p.add_argument("--db", help="PostgreSQL URL instead of the embedded store (env LOOKALIKE_DB)")
    p.add_argument("--read-db", action="append", help="read replica URL for searches (repeatable)")
    p.add_argument("--model", help="efficientnet-lite0 (default), efficientnet-lite1/2, or clip:ARCH:WEIGHTS")
    p.add_argument("--device", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--engine", choices=("auto", "torch", "onnx"),
                   help="inference engine (default auto: ONNX Runtime on CPU when installed, else torch)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", help="only images in this folder (and below)")
    p.add_argument("--after", help="taken on or after this date (YYYY-MM-DD)")
    p.add_argument("--before", help="taken before this date (YYYY-MM-DD)")
    p.add_argument("--camera", help="camera make/model contains this text")
    p.add_argument("--min-size", type=int, help="shorter side at least this many pixels")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("library", "db", "model", "device", "engine")}
    if getattr(args, "read_db", None):
        overrides["read_db"] = tuple(args.read_db)
    if getattr(args, "batch_size", None):
        overrides["batch_size"] = args.batch_size
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    if getattr(args, "threads", None):
        overrides["threads"] = args.threads
    if getattr(args, "vector_index", None):
        overrides["vector_index"] = args.vector_index
    for flag in ("ocr", "faces"):
        if getattr(args, flag, False):
            overrides[flag] = True
    return Settings.from_env(**overrides)


def library_from(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from lookalike.library import Library

    return Library(settings=settings_from(args))


def filters_from(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from lookalike.stores.base import Filters

    return Filters(folder=getattr(args, "folder", None), after=getattr(args, "after", None),
                   before=getattr(args, "before", None), camera=getattr(args, "camera", None),
                   min_size=getattr(args, "min_size", None))


def emit(args: argparse.Namespace, obj: object, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, ensure_ascii=False))
    else:
        print(text)


# -- commands ------------------------------------------------------------------------------------------------
@command("index")
def cmd_index(args: argparse.Namespace) -> int:
    with library_from(args) as lib:
        show = not args.json and not args.quiet and sys.stderr.isatty() or args.progress
        summary = lib.index(args.paths, progress=show)
    if not args.json:
        for path, reason in summary.skipped[: args.show_skipped]:
            print(f"skipped {path}: {reason}", file=sys.stderr)
        if len(summary.skipped) > args.show_skipped:
            print(f"... and {len(summary.skipped) - args.show_skipped} more skipped", file=sys.stderr)
    emit(args, summary.as_dict(), summary.line())
    return 130 if summary.interrupted else 0


@command("search")
def cmd_search(args: argparse.Namespace) -> int:
    with library_from(args) as lib:
        res = lib.search(" ".join(args.query) if args.query else None, image=args.image, face=args.face,
                         by=args.by, limit=args.limit, threshold=args.threshold, filters=filters_from(args),
                         weights=_weights(args.weight), expand=not args.no_expand,
                         semantic=False if args.no_semantic else None,
                         more_like=args.more_like, less_like=args.less_like)
        if args.grid:
            from lookalike.grid import contact_sheet

            qimg = res.query if res.kind == "image_path" else None
            contact_sheet([(r.path, r.score) for r in res.results], args.grid, query_image=qimg,
                          query_label=res.query)
    d = res.as_dict()
    if not args.explain:
        d.pop("explain", None)
    lines = explain_lines(res.explain) if args.explain else []
    for n, r in enumerate(res.results, start=1):
        tags = ", ".join(str(t["name"]) for t in r.tags[:3])
        lines.append(f"{n:3d}  {r.score:8.4f}  {r.path}  [{tags}]")
    if not res.results:
        lines.append("no results")
    if args.grid:
        lines.append(f"grid written to {args.grid}")
    emit(args, d, "\n".join(lines))
    return 0


def _image_id(text: str) -> int:
    value = text[3:] if text.startswith("id:") else text
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not an image id: {text!r} (N or id:N)")
    return int(value)


def _weights(items: Sequence[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise LookalikeError(f"--weight wants NAME=NUMBER (text, image or face), not {item!r}") from None
        if not sep:
            raise LookalikeError(f"--weight wants NAME=NUMBER (text, image or face), not {item!r}")
    return out


def explain_lines(explain: dict) -> list[str]:  # type: ignore[type-arg]
    """What a query became, for people: classes (and how each was reached), signals, seeds, face."""
    lines = []
    if explain.get("classes"):
        names = ", ".join(f"{c['name']} ({c['weight']}{', by meaning' if c.get('via') == ['meaning'] else ''})"
                          for c in explain["classes"][:10])
        lines.append(f"query became: {names}")
    if explain.get("unmatched"):
        lines.append(f"not in the vocabulary: {', '.join(explain['unmatched'])}"
                     + (" (mapped by the sentence model)" if explain.get("semantic") else ""))
    if explain.get("expanded_from"):
        lines.append(f"expanded with photos like ids {', '.join(map(str, explain['expanded_from']))}")
    if explain.get("face"):
        f = explain["face"]
        lines.append(f"face at {tuple(f['box'])} ({f['faces_in_query']} in the query photo), same person "
                     f"when distance < {f['max_distance']}")
    signals = explain.get("signals")
    if signals:
        parts = [f"{n} {v['hits'] if isinstance(v, dict) else v} hits" + (f" x{v['weight']}" if isinstance(v, dict) else "")
                 for n, v in signals.items()]
        lines.append("signals: " + ", ".join(parts))
    return lines


@command("describe")
def cmd_describe(args: argparse.Namespace) -> int:
    with library_from(args) as lib:
        out = lib.import_descriptions(args.file)
    missing = out["missing"]
    text = f"imported {out['imported']} of {out['entries']} descriptions"
    if missing:
        text += f"; {len(missing)} paths are not in the library: " + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")  # type: ignore[arg-type,index]
    emit(args, out, text)
    return 0


@command("info")
def cmd_info(args: argparse.Namespace) -> int:
    with library_from(args) as lib:
        info = lib.info()
    model = info.get("model") or {}
    text = "\n".join([
        f"store:    {info.get('store')}  {info.get('location')}",
        f"images:   {info.get('images')}  (vectors {info.get('vectors')}, folders {info.get('folders')})",
        f"model:    {model.get('name', '-')}  {model.get('version', '')}",
        f"size:     {int(info.get('bytes') or 0) / 1e6:.1f} MB",
        f"vectors:  {_index_line(info.get('vector_index') or {})}",
        f"schema:   v{info.get('schema_version')}",
    ])
    emit(args, info, text)
    return 0


@command("dupes")
def cmd_dupes(args: argparse.Namespace) -> int:
    if args.delete and args.move_to:
        raise LookalikeError("give --delete or --move-to, not both")
    with library_from(args) as lib:
        show = not args.json and sys.stderr.isatty() or args.progress
        report = lib.dupes(method=args.method, threshold=args.threshold, filters=filters_from(args),
                           neighbours=args.neighbours, progress=show)
        done = lib.remove_duplicates(report, delete=args.delete, move_to=args.move_to) \
            if (args.delete or args.move_to) else []
    d = report.as_dict()
    lines = []
    for n, g in enumerate(report.groups, start=1):
        lines.append(f"group {n}: {'exact copies' if g.kind == 'exact' else 'near duplicates'} ({len(g.items)})")
        for it in g.items:
            mark = "best" if it.best else ("same " if it.exact else f"{it.score:.3f}")
            lines.append(f"  {mark:>5}  {it.width}x{it.height}  {it.path}")
    extra = len(report.groups) and sum(len(g.items) - 1 for g in report.groups)
    lines.append(f"{len(report.groups)} group{'' if len(report.groups) == 1 else 's'}, {extra} extra "
                 f"cop{'y' if extra == 1 else 'ies'} among {report.images} images "
                 f"({report.method}, threshold {report.threshold:g}, {report.pairs_checked} pairs checked, "
                 f"{report.verified} verified, {report.elapsed_s:.1f} s)")
    for path, reason in report.unreadable[:10]:
        print(f"could not re-read {path}: {reason}", file=sys.stderr)
    if done:
        d["actions"] = [{"path": p, "done": what} for p, what in done]
        lines += [f"{what}: {p}" for p, what in done]
    elif report.groups and not args.json:
        lines.append("nothing was changed (--delete or --move-to DIR acts on every copy but the best)")
    emit(args, d, "\n".join(lines))
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    import tempfile

    from lookalike.evaluation.copies import evaluate_copies, evaluate_labelled, format_report, image_files

    originals = image_files(args.folder)[: args.max_originals]
    distractors = [p for d in args.distractors or [] for p in image_files(d)]
    edits = [e.strip() for e in args.edits.split(",")] if args.edits else None
    with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as tmp:
        if not args.library:
            args.library = tmp  # a scratch library: the evaluation never touches the user's index
        with library_from(args) as lib:
            show = not args.json and sys.stderr.isatty()
            report = {"copies": evaluate_copies(lib, originals, distractors, edits=edits, progress=show)}
            if args.labelled:
                report["labelled"] = evaluate_labelled(lib, args.labelled, k=args.k)
    emit(args, report, format_report(report))
    return 0


def _index_line(v: dict) -> str:  # type: ignore[type-arg]
    extra = ", ".join(f"{k} {v[k]}" for k in ("nlist", "nprobe", "M", "ef_search", "tombstones") if v.get(k))
    return f"{v.get('kind', '-')} index" + (f" ({extra})" if extra else "")


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    from lookalike.server.command import serve

    return serve(args, library_from(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lookalike", description="Offline image search by example and keyword.")
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index (or update) folders of photos")
    _common(p)
    p.add_argument("paths", nargs="+", help="folders or files")
    p.add_argument("--batch-size", type=int, help="images per model batch (default 32)")
    p.add_argument("--workers", type=int, help="decoding threads (default: from the CPU count)")
    p.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    p.add_argument("--progress", action="store_true", help="always show the progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--show-skipped", type=int, default=20, help="list at most this many skipped files")
    p.add_argument("--ocr", action="store_true", help="also read the text inside photos (slow: ~0.1-0.7 s/image)")
    p.add_argument("--faces", action="store_true", help="also detect faces, for search --face")
    p.add_argument("--vector-index", choices=VECTOR_INDEX_KINDS,
                   help="embedded store's vector index (default auto: exact below 25k images, IVF-SQ8 above); kept")

    p = sub.add_parser("search", help="search by an image file, an http(s) URL, id:N, or keywords")
    _common(p)
    _filters(p)
    p.add_argument("query", nargs="*", help="an image path or URL, id:N, or keywords / free text")
    p.add_argument("--image", metavar="PATH", help="an example image, combined with the words (rank fusion)")
    p.add_argument("--face", metavar="PATH", help="photos of the same person as the face in PATH (index --faces)")
    p.add_argument("--weight", action="append", metavar="NAME=W",
                   help="weight of a signal in a combined query: text=1, image=1, face=1 (repeatable)")
    p.add_argument("--no-expand", action="store_true", help="keywords: no visual-neighbour expansion")
    p.add_argument("--no-semantic", action="store_true", help="keywords: vocabulary only, no sentence model")
    p.add_argument("--limit", "-n", type=int, default=10)
    p.add_argument("--threshold", type=float, help="drop results scoring below this")
    p.add_argument("--by", choices=["embedding", "tags"], default="embedding",
                   help="image queries: deep embeddings (default) or class-score vectors (visual words)")
    p.add_argument("--grid", metavar="OUT.png", help="also write a contact sheet of the query and results")
    p.add_argument("--explain", action="store_true", help="show which classes/signals the query became")
    p.add_argument("--more-like", nargs="+", action="extend", type=_image_id, default=[], metavar="ID",
                   help="relevance feedback: re-rank towards these result ids (N or id:N)")
    p.add_argument("--less-like", nargs="+", action="extend", type=_image_id, default=[], metavar="ID",
                   help="relevance feedback: re-rank away from these result ids (they are dropped)")

    p = sub.add_parser("describe", help="import descriptions/captions (JSON or CSV: path -> text), searchable")
    _common(p)
    p.add_argument("file", help="a .json ({path: text} or [{path, description}]) or .csv (path,description)")

    p = sub.add_parser("dupes", help="groups of exact copies and near duplicates (edited copies), best first")
    _common(p)
    _filters(p)
    p.add_argument("--method", choices=DUPES_METHODS, default=DUPES_METHODS[0],
                   help="verified (default: embeddings + geometric verification), embedding or phash")
    p.add_argument("--threshold", type=float,
                   help="similarity above which two photos are copies (default: the method's calibrated point)")
    p.add_argument("--neighbours", type=int, default=10, help="candidates per image (default 10)")
    p.add_argument("--delete", action="store_true", help="DELETE every copy but the best of each group")
    p.add_argument("--move-to", metavar="DIR", help="move every copy but the best of each group into DIR")
    p.add_argument("--progress", action="store_true", help="always show the progress bar")

    p = sub.add_parser("eval", help="measure copy detection (and image search) quality on a folder of photos")
    _common(p)
    p.add_argument("folder", help="real photos: each is edited (crop, rotate, mirror, watermark, ...) into queries")
    p.add_argument("--distractors", action="append", metavar="DIR", help="more photos in the collection (repeatable)")
    p.add_argument("--labelled", metavar="DIR", help="a labelled set (folder = class): precision@k and mAP of image queries")
    p.add_argument("--edits", help="comma-separated subset of the edits (default: all 16)")
    p.add_argument("--max-originals", type=int, default=200, help="edit at most this many photos (default 200)")
    p.add_argument("--k", type=int, default=10, help="k of precision@k on the labelled set")

    p = sub.add_parser("info", help="counts, model, store size")
    _common(p)

    p = sub.add_parser("serve", help="the web page and REST API (default http://127.0.0.1:8000/)")
    _common(p)
    from lookalike.server.command import add_arguments as serve_arguments

    serve_arguments(p)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


# Feature modules register extra subcommands here (dupes, eval, serve, db, migrate, ...).
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []
_EXTENSIONS.append(lambda sub: __import__("lookalike.pgcli", fromlist=["register"]).register(sub, COMMANDS))  # db, migrate
_EXTENSIONS.append(lambda sub: __import__("lookalike.concepts_cli", fromlist=["register"]).register(sub, COMMANDS))  # teach, concepts, forget


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LookalikeError as err:
        print(f"lookalike: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lookalike: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
