"""The command line: parse, call the Library, print (a table, or --json). No logic of its own.

Exit statuses (errors.py): 0 done, 1 runtime failure, 2 usage error, 130 interrupted. No traceback reaches a
user: an unexpected error prints one line and where its full report was written (``--debug``: the traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence

from lookalike import __version__
from lookalike.config import DUPES_METHODS, VECTOR_INDEX_KINDS, Settings, count, device
from lookalike.dates import day_arg
from lookalike.display import quote_path
from lookalike.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, LookalikeError, NotFound, explain_failure, write_report
from lookalike.shell import (add_paths_output, check_outputs, finish, guarded_stdout, image_out, json_text,
                             print_paths, print_skipped, setup_logging, show_progress)

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def deco(fn: Command) -> Command:
        COMMANDS[name] = fn
        return fn

    return deco


# -- shared options ------------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, read_db: bool = True, model: bool = True, json: bool = True) -> None:
    """The library options; only those that mean something to the command (a replica only serves reads, a
    model only matters to commands that embed images)."""
    p.add_argument("--library", help="library folder (env LOOKALIKE_LIBRARY; default: the user data folder)")
    p.add_argument("--db", help="PostgreSQL URL instead of the embedded store (env LOOKALIKE_DB)")
    if read_db:
        p.add_argument("--read-db", action="append", help="read replica URL for searches (repeatable)")
    if model:
        p.add_argument("--model", help="efficientnet-lite0 (default), efficientnet-lite1/2, or clip:ARCH:WEIGHTS")
        p.add_argument("--device", type=device, help="cpu (default), cuda, cuda:N or auto")
        p.add_argument("--engine", choices=("auto", "torch", "onnx"),
                       help="inference engine (default auto: ONNX Runtime on CPU when installed, else torch)")
    if json:
        p.add_argument("--json", action="store_true", help="print one JSON object")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", help="only images in this folder (and below)")
    p.add_argument("--after", type=day_arg, help="taken on or after this date (YYYY-MM-DD)")
    p.add_argument("--before", type=day_arg, help="taken before this date (YYYY-MM-DD)")
    p.add_argument("--camera", help="camera make/model contains this text")
    p.add_argument("--min-size", type=count(1), help="shorter side at least this many pixels")


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (every score and threshold is one), so --threshold 2 is a usage
    error before the library is opened."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want a number from 0 to 1, not {text!r}") from None
    if not 0.0 <= x <= 1.0:  # also NaN
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (every score is), not {text}")
    return x


fraction.__name__ = "number"


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("library", "db", "model", "device", "engine")}
    for k in ("library", "db"):
        if overrides[k] is not None and not str(overrides[k]).strip():  # "--library ''": not the current folder
            raise LookalikeError(f"--{k} is empty: give a {'folder' if k == 'library' else 'postgresql:// URL'}")
    if getattr(args, "read_db", None):
        if not (overrides["db"] or os.environ.get("LOOKALIKE_DB")):
            raise LookalikeError("--read-db names read replicas of a PostgreSQL store: give its primary with --db")
        overrides["read_db"] = tuple(args.read_db)
    if getattr(args, "batch_size", None):
        overrides["batch_size"] = args.batch_size
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    if getattr(args, "threads", None):
        overrides["threads"] = args.threads
    if getattr(args, "vector_index", None):
        overrides["vector_index"] = args.vector_index
    for flag in ("ocr", "faces", "copy_features", "follow_symlinks"):
        if getattr(args, flag, False):
            overrides[flag] = True
    return Settings.from_env(**overrides)


def library_from(args: argparse.Namespace, *, create: bool = False):  # type: ignore[no-untyped-def]
    """The library the command names; only commands that build one (index) may ``create`` it."""
    from lookalike.library import Library
    from lookalike.location import check_library

    settings = settings_from(args)
    check_library(settings, create=create)
    return Library(settings=settings)


def filters_from(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from lookalike.stores.base import Filters

    return Filters(folder=getattr(args, "folder", None), after=getattr(args, "after", None),
                   before=getattr(args, "before", None), camera=getattr(args, "camera", None),
                   min_size=getattr(args, "min_size", None))


def emit(args: argparse.Namespace, obj: object, text: str) -> None:
    if getattr(args, "json", False):
        print(json_text(obj))
    else:
        print(text)


# -- commands ------------------------------------------------------------------------------------------------
@command("index")
def cmd_index(args: argparse.Namespace) -> int:
    if not any(os.path.lexists(os.path.expanduser(p)) for p in args.paths):  # before a library is created
        raise NotFound(f"nothing to index: {', '.join(args.paths)} {'does' if len(args.paths) == 1 else 'do'} "
                       "not exist")
    with library_from(args, create=True) as lib:
        summary = lib.index(args.paths, progress=show_progress(args), rehash=args.rehash)
    if not args.json and not args.quiet:
        print_skipped(summary.skipped, args.show_skipped)
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
    if args.paths:
        print_paths((r.path for r in res.results), args.null)
        return 0
    d = res.as_dict()
    if not args.explain:
        d.pop("explain", None)
    lines = explain_lines(res.explain) if args.explain else []
    for n, r in enumerate(res.results, start=1):
        tags = ", ".join(str(t["name"]) for t in r.tags[:3])
        copy = "" if r.copy is None else f"  copy: {'yes' if r.copy else 'no'} ({r.copy_score:.2f})"
        lines.append(f"{n:3d}  {r.score:8.4f}  {quote_path(r.path)}  [{tags}]{copy}")
    if not res.results and not args.quiet:
        ignored = res.explain.get("common_words_only")
        folder = getattr(args, "folder", None)
        why = (f" (the query has only common words, which are not searched on their own: {' '.join(ignored)})"
               if ignored else f" (--folder {folder} does not exist here)"
               if folder and not os.path.isdir(os.path.expanduser(folder)) else "")
        lines.append("no results" + why)
    if args.grid and not args.quiet:
        lines.append(f"grid written to {args.grid}")
    emit(args, d, "\n".join(lines))
    return 0


def _image_id(text: str) -> int:
    from lookalike.search.plan import parse_id

    try:
        return parse_id(text[3:] if text.startswith("id:") else text, text)
    except LookalikeError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
        names = ", ".join(f"{c['name']} ({c['weight']}{', ' + ' + '.join(c['via']) if c.get('via') else ''})"
                          for c in explain["classes"][:10])
        lines.append(f"query became: {names}")
    if explain.get("unmatched"):
        lines.append(f"not in the vocabulary: {', '.join(explain['unmatched'])}"
                     + (" (mapped by the sentence model)" if explain.get("semantic") else ""))
    if explain.get("expanded_from"):
        lines.append(f"expanded with photos like ids {', '.join(map(str, explain['expanded_from']))}")
    if explain.get("refined_from"):
        lines.append(f"then with photos like ids {', '.join(map(str, explain['refined_from']))}")
    for name, t in (explain.get("terms") or {}).items():
        if t.get("taught"):
            prec = "" if t.get("precision") is None else f", estimated precision {t['precision']}"
            lines.append(f"taught word: {name.split(':', 1)[-1]} ({t['examples']} examples, "
                         f"{t['counter_examples']} counter-examples{prec})")
    if explain.get("excluded"):
        x = explain["excluded"]
        more = " or more than the words asked" if x.get("relative") else ""
        lines.append(f"left out: {x.get('from_results', 0)} of the results found, as showing "
                     + ", ".join(f"{w} ({n} photos at P >= {x['min_probability']})" for w, n in x["words"].items())
                     + more)
    if explain.get("feedback"):
        f = explain["feedback"]
        lines.append("re-ranked: more like " + (", ".join(f"id:{i}" for i in f["more_like"]) or "-")
                     + ", less like " + (", ".join(f"id:{i}" for i in f["less_like"]) or "-"))
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
        f"people:   {(info.get('people') or {}).get('people', 0)} ({(info.get('people') or {}).get('named', 0)} named)",
        f"schema:   v{info.get('schema_version')}",
        *(f"replica:  {r.get('url')}  " + ("ok" if r.get("ok") else f"unreachable: {r.get('error')}")
          for r in info.get("replicas") or []),
    ])
    emit(args, info, text)
    return 0


@command("dupes")
def cmd_dupes(args: argparse.Namespace) -> int:
    if sum(map(bool, (args.delete, args.move_to, args.trash))) > 1:
        raise LookalikeError("give only one of --trash, --move-to or --delete, not both")
    if args.yes and not args.delete:  # else "dupes --yes" would look like it removed something
        raise LookalikeError("--yes goes with --delete (it skips its question)")
    with library_from(args) as lib:
        report = lib.dupes(method=args.method, threshold=args.threshold, filters=filters_from(args),
                           neighbours=args.neighbours, progress=show_progress(args))
        if args.paths:
            print_paths((it.path for g in report.groups for it in g.items if not it.best), args.null)
            return 0
        if args.delete and report.groups:
            from lookalike.upkeep import confirm_delete

            confirm_delete(args, sum(len(g.items) - 1 for g in report.groups))
        from lookalike.trash import group_reasons

        reasons = group_reasons(lib.store, report.groups)
        from lookalike.upkeep import act_on_dupes

        done = act_on_dupes(args, lib, report)
    d = report.as_dict()
    lines = []
    for n, (g, why) in enumerate(zip(report.groups, reasons, strict=True), start=1):
        d["groups"][n - 1]["why_best"] = why  # type: ignore[index]
        lines.append(f"group {n}: {'exact copies' if g.kind == 'exact' else 'near duplicates'} ({len(g.items)}); "
                     f"best: {why}")
        for it in g.items:
            mark = "best" if it.best else ("same " if it.exact else f"{it.score:.3f}")
            lines.append(f"  {mark:>5}  {it.width}x{it.height}  {quote_path(it.path)}")
    extra = len(report.groups) and sum(len(g.items) - 1 for g in report.groups)
    lines.append(f"{len(report.groups)} group{'' if len(report.groups) == 1 else 's'}, {extra} extra "
                 f"cop{'y' if extra == 1 else 'ies'} among {report.images} images "
                 f"({report.method}, threshold {report.threshold:g}, {report.pairs_checked} pairs checked, "
                 f"{f'{report.screened + report.aligned} settled by copy features, ' if report.screened + report.aligned else ''}"
                 f"{f'{report.refuted} refuted by them, ' if report.refuted else ''}"
                 f"{report.verified} verified{f', {report.reused} known' if report.reused else ''}, "
                 f"{report.elapsed_s:.1f} s)")
    for path, reason in report.unreadable[:10]:
        print(f"could not re-read {quote_path(path)}: {reason}", file=sys.stderr)
    if done:
        d["actions"] = [{"path": p, "done": what} for p, what in done]
        lines += [f"{what}: {quote_path(p)}" for p, what in done]
    elif report.groups and not args.json and not args.quiet:
        lines.append("nothing was changed (--trash or --move-to DIR moves every copy but the best; undo: "
                     "lookalike undo)")
    emit(args, d, "\n".join(lines))
    return 0


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    import tempfile

    from lookalike.evaluation.copies import evaluate_copies, evaluate_labelled, format_report, image_files

    originals = image_files(args.folder)[: args.max_originals]
    distractors = [p for d in args.distractors or [] for p in image_files(d)]
    edits = [e.strip() for e in args.edits.split(",") if e.strip()] if args.edits else None
    with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as tmp:
        if not args.library:
            args.library = tmp  # a scratch library: the evaluation never touches the user's index
        with library_from(args, create=True) as lib:
            report = {"copies": evaluate_copies(lib, originals, distractors, edits=edits,
                                                progress=show_progress(args))}
            if args.labelled:
                report["labelled"] = evaluate_labelled(lib, args.labelled, k=args.k)
    emit(args, report, format_report(report))
    return 0


def _index_line(v: dict | str) -> str:  # type: ignore[type-arg]
    if isinstance(v, str):  # PostgreSQL names its index ("hnsw", "exact"): pgvector keeps it
        return f"{v} index (pgvector)"
    extra = ", ".join(f"{k} {v[k]}" for k in ("nlist", "nprobe", "M", "ef_search", "tombstones") if v.get(k))
    return f"{v.get('kind', '-')} index" + (f" ({extra})" if extra else "")


@command("serve")
def cmd_serve(args: argparse.Namespace) -> int:
    from lookalike.server.command import serve

    return serve(args, library_from(args, create=True))  # a server may build its library by indexing jobs


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: what was wrong and where the help is, not the usage block first."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help shows the options)\n")

    words_to: str | None = None  # search: "-word" tokens (a word left out of the results) join this positional

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def, override]
        """As argparse's, but a negative number after an option that takes a value is that value (``-0``, as in
        ``xargs -0``, makes argparse read ``--limit -1`` as two options: "expected one argument"), and, for
        search, ``-word`` is a query word ("cat -dog"), not an unknown option."""
        args = self._negatives_joined(sys.argv[1:] if args is None else list(args))
        words: list[str] = []
        if self.words_to:
            args, words = self._excluded_words(args)
        ns, extra = super().parse_known_args(args, namespace)
        if words:
            setattr(ns, self.words_to, [*(getattr(ns, self.words_to) or []), *words])
        return ns, extra

    _WORD = re.compile(r"-[^\W\d_][^\W\d_'-]*(?:['-][^\W\d_]+)*$")

    def _excluded_words(self, args: list[str]) -> tuple[list[str], list[str]]:
        """The ``-word`` tokens before ``--`` that name no option: three letters at least, not ``--`` plus a
        prefix of a long option (``-limit`` stays an error), not a cluster of one-letter flags."""
        flags = {o[1] for o in self._option_string_actions if len(o) == 2 and o[0] == "-"}
        longs = [o for o in self._option_string_actions if o.startswith("--")]
        kept: list[str] = []
        words: list[str] = []
        for i, tok in enumerate(args):
            if tok == "--":
                kept.extend(args[i:])
                break
            word = tok[1:]
            if (tok not in self._option_string_actions and self._WORD.match(tok) and len(word) >= 3
                    and not any(o.startswith("-" + tok) for o in longs) and not set(word) <= flags
                    and not self._short_with_value(tok)):
                words.append(tok)
            else:
                kept.append(tok)
        return kept, words

    def _short_with_value(self, tok: str) -> bool:
        """``-n5``: a one-letter option with its value attached (``-night`` is no count: a word)."""
        action = self._option_string_actions.get(tok[:2])
        if action is None or action.nargs == 0:
            return False
        try:
            (action.type or str)(tok[2:])
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            return False
        return True

    def _negatives_joined(self, args: list[str]) -> list[str]:
        out: list[str] = []
        it = iter(args)
        for tok in it:
            out.append(tok)
            if tok == "--":
                out.extend(it)
                break
            action = self._option_string_actions.get(tok)
            if action is not None and action.nargs is None and action.option_strings and tok.startswith("-"):
                nxt = next(it, None)
                if nxt is None:
                    break
                if self._negative_number_matcher.match(nxt):
                    out[-1] = f"{tok}={nxt}" if tok.startswith("--") else tok + nxt
                else:
                    out.append(nxt)
        return out


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lookalike", description="Offline image search by example and keyword.",
                    epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lookalike {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("index", help="index (or update) folders of photos")
    _common(p)
    p.add_argument("paths", nargs="+", help="folders or files")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="also follow symlinks that lead outside the folders being indexed (default: not followed)")
    p.add_argument("--rehash", action="store_true",
                   help="read and hash every file, not only those whose size or mtime changed: finds files rewritten "
                        "in place with their dates put back (reads everything; embeds only what changed)")
    p.add_argument("--batch-size", type=count(1, 4096), help="images per model batch (default 8 on the CPU, 32 on a GPU)")
    p.add_argument("--workers", type=count(0, 256), help="decoding threads (default: from the CPU count)")
    p.add_argument("--threads", type=count(0, 1024), help="inference threads (default: half the cores on the CPU, the rest decode)")
    p.add_argument("--progress", action="store_true", help="always show the progress bar")
    p.add_argument("--show-skipped", type=count(0), default=20, help="list at most this many skipped files")
    p.add_argument("--ocr", action="store_true", help="also read the text inside photos (slow: ~0.1-0.7 s/image)")
    p.add_argument("--faces", action="store_true", help="also detect faces, for search --face")
    p.add_argument("--copy-features", action="store_true",
                   help="also keep local features and a small gray copy (~30 KB/image, ~4 ms) so that dupes checks pairs without "
                        "re-reading files: for large libraries (docs/duplicates.md)")
    p.add_argument("--vector-index", choices=VECTOR_INDEX_KINDS,
                   help="embedded store's vector index (default auto: exact below 25k images, ivf-pca-sq8 above: "
                        "docs/scale.md); kept")

    p = sub.add_parser("search", help="search by an image file, an http(s) URL, id:N, or keywords")
    _common(p)
    _filters(p)
    p.words_to = "query"  # type: ignore[attr-defined]
    p.add_argument("query", nargs="*", help="an image path or URL, id:N, or keywords / free text; -word leaves "
                                            "out photos of that word (cat -dog)")
    p.add_argument("--image", metavar="PATH", help="an example image, combined with the words (rank fusion)")
    p.add_argument("--face", metavar="PATH", help="photos of the same person as the face in PATH (index --faces)")
    p.add_argument("--weight", action="append", metavar="NAME=W",
                   help="weight of a signal in a combined query: text=1, image=1, face=1 (repeatable)")
    p.add_argument("--no-expand", action="store_true", help="keywords: no visual-neighbour expansion")
    p.add_argument("--no-semantic", action="store_true", help="keywords: vocabulary only, no sentence model")
    p.add_argument("--limit", "-n", type=count(1), default=10, help="at most this many results (default 10)")
    p.add_argument("--threshold", type=fraction, help="drop results scoring below this (0-1; words: the probability "
                   "that the photo shows them, images: re-ranked cosine, lower than --by cosine)")
    p.add_argument("--by", choices=["embedding", "tags", "cosine"], default="embedding",
                   help="image queries: deep embeddings re-ranked (default), class-score vectors (visual words), "
                   "or plain embedding cosine (faster; scores comparable to dupes)")
    p.add_argument("--grid", metavar="OUT.png", type=image_out,
                   help="also write a contact sheet of the query and results (.png, .jpg or .webp)")
    p.add_argument("--explain", action="store_true", help="show which classes/signals the query became")
    p.add_argument("--more-like", nargs="+", action="extend", type=_image_id, default=[], metavar="ID",
                   help="relevance feedback: re-rank towards these result ids (N or id:N)")
    p.add_argument("--less-like", nargs="+", action="extend", type=_image_id, default=[], metavar="ID",
                   help="relevance feedback: re-rank away from these result ids (they are dropped)")
    add_paths_output(p, "the paths of the results")

    p = sub.add_parser("describe", help="import descriptions/captions (JSON or CSV: path -> text), searchable")
    _common(p, read_db=False, model=False)
    p.add_argument("file", help="a .json ({path: text} or [{path, description}]) or .csv (path,description)")

    p = sub.add_parser("dupes", help="groups of exact copies and near duplicates (edited copies), best first")
    _common(p, read_db=False, model=False)
    _filters(p)
    p.add_argument("--method", choices=DUPES_METHODS, default=DUPES_METHODS[0],
                   help="verified (default: embeddings + geometric verification), embedding or phash")
    p.add_argument("--threshold", type=fraction,
                   help="similarity above which two photos are copies (default: the method's calibrated point)")
    p.add_argument("--neighbours", type=count(1, 1000), default=10, help="candidates per image (default 10)")
    p.add_argument("--trash", action="store_true",
                   help="move every copy but the best of each group to the desktop trash (undo: lookalike undo)")
    p.add_argument("--move-to", metavar="DIR",
                   help="move every copy but the best of each group into DIR (undo: lookalike undo)")
    p.add_argument("--delete", action="store_true",
                   help="DELETE every copy but the best for good (asks first; --yes to skip the question)")
    p.add_argument("--yes", "-y", action="store_true", help="with --delete: do not ask")
    p.add_argument("--progress", action="store_true", help="always show the progress bar")
    add_paths_output(p, "the copies that are not the best")

    p = sub.add_parser("eval", help="measure copy detection (and image search) quality on a folder of photos")
    _common(p)
    p.add_argument("folder", help="real photos: each is edited (crop, rotate, mirror, watermark, ...) into queries")
    p.add_argument("--distractors", action="append", metavar="DIR", help="more photos in the collection (repeatable)")
    p.add_argument("--labelled", metavar="DIR", help="a labelled set (folder = class): precision@k and mAP of image queries")
    p.add_argument("--edits", help="comma-separated subset of the edits (default: all 16)")
    p.add_argument("--max-originals", type=count(1), default=200, help="edit at most this many photos (default 200)")
    p.add_argument("--k", type=count(1, 1000), default=10, help="k of precision@k on the labelled set")

    p = sub.add_parser("info", help="counts, model, store size")
    _common(p, model=False)

    p = sub.add_parser("serve", help="the web page and REST API (default http://127.0.0.1:8000/)")
    _common(p, json=False)
    p.add_argument("--json", action="store_true", help="print the server's URL as one JSON line once it listens")
    from lookalike.server.command import add_arguments as serve_arguments

    serve_arguments(p)

    for extend in _EXTENSIONS:
        extend(sub)
    finish(parser, sub)  # -v/--debug/-q, examples and environment in every command's help, completion hints
    parser.epilog = f"{EXIT_STATUS}\n\n{parser.epilog or ''}"
    for p in sub.choices.values():
        p.epilog = f"{p.epilog or ''}\n{EXIT_SHORT}"
    return parser


# Feature modules register extra subcommands here (dupes, eval, serve, db, migrate, ...).
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []
_EXTENSIONS.append(lambda sub: __import__("lookalike.pgcli", fromlist=["register"]).register(sub, COMMANDS))  # db, migrate
_EXTENSIONS.append(lambda sub: __import__("lookalike.upkeep", fromlist=["register"]).register(sub, COMMANDS))  # watch, undo, completion
_EXTENSIONS.append(lambda sub: __import__("lookalike.peoplecli", fromlist=["register"]).register(sub, COMMANDS))  # people
_EXTENSIONS.append(lambda sub: __import__("lookalike.concepts_cli", fromlist=["register"]).register(sub, COMMANDS))  # teach, concepts, forget


EXIT_STATUS = """exit status:
  0    done
  1    runtime failure: disk full, read-only or corrupt library, not a library, an unexpected error
  2    usage error: bad arguments or input (a missing file, an invalid date, ...)
  130  interrupted (Ctrl+C); what was indexed so far is kept"""
EXIT_SHORT = "exit status: 0 done, 1 runtime failure, 2 usage error, 130 interrupted (lookalike --help)"


class _Interrupts:
    """SIGINT raises KeyboardInterrupt as Python's own handler does, and is remembered: a Ctrl+C that lands in
    a C extension's import (onnxruntime: "ImportError: initialization failed") or in a database driver's
    cleanup comes back as another error, which is still an interruption (130), not a bug."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def __enter__(self) -> "_Interrupts":
        import signal
        import threading

        self.old = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
        if self.old is signal.default_int_handler:
            signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.old is signal.default_int_handler:
            signal.signal(signal.SIGINT, self.old)


def main(argv: Sequence[str] | None = None) -> int:
    args = argparse.Namespace()
    with _Interrupts() as interrupts:
        try:  # parsing too: building the parser imports the commands' modules, where an early Ctrl+C lands
            parser = build_parser()
            args = parser.parse_args(argv)
            check_outputs(parser, args)
            setup_logging(args)
            with guarded_stdout():
                return COMMANDS[args.command](args)
        except KeyboardInterrupt:
            print("lookalike: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return 0
        except Exception as err:  # noqa: BLE001 - the one place errors become a line and an exit status
            if interrupts.seen:
                print("lookalike: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            return _fail(args, err)


def _fail(args: argparse.Namespace, err: Exception) -> int:
    if not isinstance(err, LookalikeError):
        err = explain_failure(err, _where(args)) or err  # type: ignore[assignment]
    if isinstance(err, LookalikeError):
        print(f"lookalike: error: {err}", file=sys.stderr)
        return err.exit_code
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exception(err)
        return EXIT_RUNTIME
    report = write_report(err, getattr(args, "command", None))
    first = " ".join(str(err).split())[:300]
    print(f"lookalike: unexpected error: {type(err).__name__}{': ' + first if first else ''} (a bug; "
          f"{'the full report is in ' + report if report else 'no report could be written'}; "
          "--debug prints it here)", file=sys.stderr)
    return EXIT_RUNTIME


def _where(args: argparse.Namespace) -> str:
    try:
        s = settings_from(args)
    except Exception:  # noqa: BLE001
        return "the library"
    return "the database" if s.db else f"the library {s.library}"


if __name__ == "__main__":
    raise SystemExit(main())
