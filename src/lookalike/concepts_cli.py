"""``lookalike teach WORD EXAMPLE... [--not EXAMPLE...]``, ``lookalike concepts``, ``lookalike forget WORD``.

Registered in cli.py's build_parser() through _EXTENSIONS; the work is done by Library.teach / .concepts /
.forget (lookalike.search.teach). Examples: image files, folders, id:N, or a search's --json output
(``--from-json FILE``, or piped on stdin: ``lookalike search dog --json | lookalike teach rex``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Command = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    from lookalike.cli import _common

    p = sub.add_parser("teach", help="teach a word from example photos (files, folders, id:N, search --json)")
    _common(p)
    p.add_argument("word", help="the word (or short phrase) to teach, e.g. rex")
    p.add_argument("examples", nargs="*", metavar="EXAMPLE", help="image files, folders or id:N")
    p.add_argument("--not", dest="counter", nargs="+", default=[], metavar="EXAMPLE",
                   help="counter-examples: photos that are NOT the word (files, folders or id:N)")
    p.add_argument("--from-json", metavar="FILE", action="append", default=[],
                   help="examples from a lookalike search --json output ('-' = stdin; repeatable)")
    p.add_argument("--not-from-json", metavar="FILE", action="append", default=[],
                   help="counter-examples from a lookalike search --json output")
    commands["teach"] = cmd_teach

    p = sub.add_parser("concepts", help="the taught words, with their examples and estimated precision")
    _common(p)
    p.add_argument("--paths", action="store_true", help="list every example's path")
    commands["concepts"] = cmd_concepts

    p = sub.add_parser("forget", help="forget a taught word")
    _common(p)
    p.add_argument("word")
    commands["forget"] = cmd_forget


def _read_json_arg(name: str) -> list[str]:
    from lookalike.errors import LookalikeError, NotFound
    from lookalike.search.teach import examples_from_json

    if name == "-":
        return examples_from_json(sys.stdin.read(), "stdin")
    try:
        with open(name, encoding="utf-8") as f:
            return examples_from_json(f.read(), name)
    except FileNotFoundError:
        raise NotFound(f"JSON file not found: {name}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LookalikeError(f"cannot read {name}: {getattr(err, 'strerror', None) or err}") from None


def cmd_teach(args: argparse.Namespace) -> int:
    from lookalike.cli import emit, library_from
    from lookalike.display import quote_path
    from lookalike.errors import LookalikeError

    examples = list(args.examples)
    for name in args.from_json:
        examples += _read_json_arg(name)
    counter = list(args.counter)
    for name in args.not_from_json:
        counter += _read_json_arg(name)
    if not examples and not args.from_json and not sys.stdin.isatty():
        piped = sys.stdin.read()  # lookalike search ... --json | lookalike teach WORD
        if piped.strip():  # nothing piped (cron, < /dev/null): the "give examples" error below
            from lookalike.search.teach import examples_from_json

            examples = examples_from_json(piped, "stdin")
    if not examples:
        raise LookalikeError(f"give examples of {args.word!r}: image files, folders, id:N, or --from-json FILE")
    with library_from(args) as lib:
        info = lib.teach(args.word, examples, counter)
    if not args.json:
        for s in info["skipped"]:
            print(f"skipped {quote_path(s['path'])}: {s['reason']}", file=sys.stderr)
    emit(args, info, teach_line(info))
    return 0


def teach_line(info: dict) -> str:  # type: ignore[type-arg]
    v = info.get("validation") or {}
    est = (f"estimated precision@{v.get('at', 10)} {v['precision']:.2f}, recall {v['recall']:.2f} ({v['folds']}-fold)"
           if v.get("precision") is not None else "no precision estimate (needs 2+ examples)")
    return (f"taught {info['word']!r}: {len(info['examples'])} examples, {len(info['counter_examples'])} "
            f"counter-examples; {est}; search it with: lookalike search {info['word']}")


def cmd_concepts(args: argparse.Namespace) -> int:
    from lookalike.cli import emit, library_from

    with library_from(args) as lib:
        items = lib.concepts()
    lines = []
    for c in items:
        v = c.get("validation") or {}
        prec = "-" if v.get("precision") is None else f"{v['precision']:.2f}"
        lines.append(f"{c['word']:<20} {len(c['examples']):>4} examples  {len(c['counter_examples']):>3} counter  "
                     f"precision@10~{prec:<5} {c['model']['name']}")
        if args.paths:
            lines += [f"    + {p}" for p in c["examples"]] + [f"    - {p}" for p in c["counter_examples"]]
    if not items:
        lines.append("no taught words (lookalike teach WORD EXAMPLE... teaches one)")
    emit(args, {"concepts": items}, "\n".join(lines))
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from lookalike.cli import emit, library_from

    with library_from(args) as lib:
        word = lib.forget(args.word)
    emit(args, {"forgotten": word}, f"forgot {word!r}")
    return 0
