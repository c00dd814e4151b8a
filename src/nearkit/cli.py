"""The ``nearkit`` command line.

Each sub-command lives next to the code it drives and registers itself through a
``register(subparsers)`` function listed in :data:`SUBCOMMANDS`; this module only
dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: module path of each sub-command group; each module defines ``register(subparsers)``,
#: which adds its parsers and sets ``func`` (called with the parsed namespace).
SUBCOMMANDS = (
    "nearkit._model_cli",
    "nearkit.datasets._cli",
    "nearkit.bench.cli",
    "nearkit._compile",
)


def build_parser() -> argparse.ArgumentParser:
    from nearkit import __version__

    parser = argparse.ArgumentParser(
        prog="nearkit", description="Exact k-nearest-neighbour models from CSV tables, and their "
        "benchmark."
    )
    parser.add_argument("--version", action="version", version=f"nearkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
