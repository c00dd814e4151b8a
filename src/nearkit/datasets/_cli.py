"""``nearkit datasets``: list the report datasets with the status of their files."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nearkit.datasets._errors import ChecksumError, DatasetNotFoundError
from nearkit.datasets._files import search_dirs
from nearkit.datasets._load import dataset_status, fetch_dataset
from nearkit.datasets._registry import BUNDLED, SPECS

_STYLE = {"verified": "green", "full": "green", "missing": "yellow", "corrupt": "bold red"}


def register(subparsers) -> None:
    """Add the ``datasets`` sub-command to the ``nearkit`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "datasets",
        help="list the benchmark datasets and the status of their files",
        description=(
            "List the five report datasets with the status of their files: verified (sha256 "
            "matches), full (Spotify's full 114,000-row original), missing or corrupt. Files "
            "are looked for in --data-home, then $NEARKIT_DATA, then the per-user cache."
        ),
    )
    parser.add_argument(
        "--data-home", type=Path, default=None, help="folder searched first (and downloaded into)"
    )
    parser.add_argument(
        "--download", action="store_true", help="download and verify the missing files"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Print the status table; exit code 1 if a file is corrupt or a download failed."""
    console = console or Console()
    failures = []
    if args.download:
        for name, status, _ in dataset_status(args.data_home):
            if status != "missing":
                continue
            try:
                fetch_dataset(name, data_home=args.data_home)
            except (DatasetNotFoundError, ChecksumError) as exc:
                failures.append(f"{name}: {exc}")
    rows = dataset_status(args.data_home)
    table = Table(title="nearkit datasets")
    for column in ("name", "status", "rows", "path"):
        table.add_column(column, overflow="fold")
    for name, status, path in rows:
        spec = SPECS[name]
        n_rows = {"verified": spec.n_rows, "full": spec.full_n_rows}.get(status)
        table.add_row(
            name,
            f"[{_STYLE[status]}]{status}[/]",
            "-" if n_rows is None else f"{n_rows:,}",
            "-" if path is None else str(path),
        )
    console.print(table)
    console.print("Searched: " + "; ".join(f"{p} ({label})" for label, p in search_dirs(args.data_home)))
    console.print(f"Always available offline (scikit-learn): {', '.join(BUNDLED)}")
    statuses = {status for _, status, _ in rows}
    if "missing" in statuses and not args.download:
        console.print("Run [bold]nearkit datasets --download[/] to fetch the missing files.")
    if "corrupt" in statuses:
        console.print("[bold red]Corrupt files are refused: delete them and download again.[/]")
    for failure in failures:
        console.print(f"[red]{failure}[/]", highlight=False)
    return 1 if failures or "corrupt" in statuses else 0
