"""One command-line grammar for every study (docs/cli.md).

A study's ``Config`` is a frozen dataclass whose fields carry a comment on their line::

    wd: float = 5e-4  # weight decay λ on all parameters

:func:`add_config_options` turns every field into ``--wd`` with that comment as its help text
(:func:`field_help`), reading values with the field's type (:func:`parse_field`): ``bool`` fields
become ``--x/--no-x``, tuples take comma-separated values, ``X | None`` fields accept ``none``.
:func:`add_common_options` adds the options every command shares. Exit codes: :data:`EXIT_OK` (0),
:data:`EXIT_FAILED` (1, a run failed; its folder records why), :data:`EXIT_BAD_USAGE` (2, argparse's
own code for bad options), :data:`EXIT_INTERRUPTED` (130, Ctrl-C; rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import io
import tokenize

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_BAD_USAGE",
    "EXIT_INTERRUPTED",
    "field_help",
    "parse_field",
    "add_config_options",
    "add_common_options",
    "config_overrides",
    "csv_list",
    "key_value",
    "graceful_stop",
]

EXIT_OK, EXIT_FAILED, EXIT_BAD_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@functools.cache
def field_help(cls) -> dict[str, str]:
    """Field name → the comment written on the field's line in the class body ('' if none)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    names = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, str] = {}
    line_names: dict[int, str] = {}
    for line_no, text in enumerate(source.splitlines(), 1):
        head = text.strip().split(":", 1)[0]
        if (
            head in names
            and head not in line_names.values()
            and text.startswith("    ")
            and not text.startswith("     ")
        ):
            line_names[line_no] = head
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.start[0] in line_names:
            out[line_names[tok.start[0]]] = tok.string.lstrip("#").strip()
    return out


def _type_name(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def parse_field(f: dataclasses.Field, text: str):
    """Read ``text`` as a value of field ``f``'s type; ValueError naming the option otherwise."""
    kind = _type_name(f).replace(" ", "")
    try:
        if "None" in kind and text.strip().lower() in ("none", ""):
            return None
        base = kind.split("|")[0]
        if base.startswith("tuple["):
            item = base[len("tuple[") :].split(",")[0].rstrip("]")
            cast = {"int": int, "float": float}.get(item, str)
            return tuple(cast(v.strip()) for v in text.split(",") if v.strip())
        if base == "int":
            return int(text)
        if base == "float":
            return float(text)
        return text
    except ValueError:
        raise ValueError(f"--{f.name.replace('_', '-')}: cannot read {text!r} as {kind}") from None


def add_config_options(parser: argparse.ArgumentParser, cls, *, skip=(), choices=None, defaults=None) -> None:
    """One option per field of the dataclass ``cls`` (dest = field name, default None = not given).

    ``choices`` maps field names to allowed values; ``defaults`` maps field names to the default
    shown in the help (e.g. the profile's); fields in ``skip`` get no option.
    """
    helps, choices, defaults = field_help(cls), choices or {}, defaults or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
        text = helps.get(f.name) or f.name.replace("_", " ")
        text = f"{text} (default: {default!r})".replace("%", "%%")
        if _type_name(f) == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif f.name in choices:
            parser.add_argument(flag, dest=f.name, choices=choices[f.name], default=None, help=text)
        else:

            def read(t, f=f):
                try:
                    return parse_field(f, t)
                except ValueError as err:
                    raise argparse.ArgumentTypeError(str(err)) from None

            parser.add_argument(flag, dest=f.name, type=read, default=None, metavar=f.name.upper(), help=text)


def config_overrides(args: argparse.Namespace, cls) -> dict:
    """The fields of ``cls`` given on the command line (options left at None are not given)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def add_common_options(
    parser: argparse.ArgumentParser,
    *,
    out_help: str,
    resume_help: str = "continue the work in --out: finished parts are kept, the rest is run",
    figures: bool = True,
) -> None:
    """``--out DIR``, ``--resume``, ``--progress/--no-progress`` and (if ``figures``) ``--figures/--no-figures``."""
    parser.add_argument("--out", metavar="DIR", default=None, help=out_help)
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars (default: on)"
    )
    if figures:
        parser.add_argument(
            "--figures", action=argparse.BooleanOptionalAction, default=True, help="draw figures (default: on)"
        )


def csv_list(cast, flag: str):
    """An argparse ``type`` reading a comma-separated list with ``cast`` (errors name ``flag``)."""

    def read(text: str) -> tuple:
        try:
            return tuple(cast(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: cannot read {text!r} as a comma-separated list") from None

    return read


def key_value(text: str) -> tuple[str, object]:
    """An argparse ``type`` for ``--set KEY=VALUE``: the value read as JSON where it is JSON, else as text."""
    import json

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, got {text!r}")
    key, val = text.split("=", 1)
    try:
        return key.strip().replace("-", "_"), json.loads(val)
    except json.JSONDecodeError:
        return key.strip().replace("-", "_"), val


@contextlib.contextmanager
def graceful_stop():
    """Ctrl-C in two steps: the first asks the work to stop at its next safe point (the yielded
    callable then returns True), the second raises KeyboardInterrupt at once. The previous SIGINT
    handler is restored on exit; outside the main thread nothing is installed."""
    import signal
    import sys
    import threading

    stopping: list[bool] = []

    def on_sigint(signum, frame):
        if stopping:
            raise KeyboardInterrupt
        stopping.append(True)
        print("\nstopping at the next safe point (Ctrl-C again to stop at once) ...", file=sys.stderr)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        yield lambda: bool(stopping)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
