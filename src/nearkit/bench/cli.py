"""The ``nearkit bench`` and ``nearkit report`` sub-commands.

``nearkit bench`` checks every option and that ``--out`` can be written (exit code 2 if not),
then runs the study (:func:`nearkit.bench.protocol.run_benchmark`) with a rich progress bar on
stderr, writes ``results.json``, ``results.csv``, ``report.md`` and the PNG figures into
``--out``, and prints the summary table; it exits with 1 when a dataset could not be loaded or
no engine ran.  The defaults shown by ``--help`` are read from
:class:`~nearkit.bench.protocol.BenchConfig`.  ``nearkit report DIR`` rebuilds everything but
``results.json`` from ``results.json`` alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nearkit.bench.checks import (
    FIELD_OPTIONS,
    METRIC_NAMES,
    WEIGHT_NAMES,
    check_config,
    check_out_dir,
)
from nearkit.bench.engines import ENGINES, parse_engine_name

DEFAULT_OUT = "bench-out"
#: the columns of report.md's summary that the terminal shows
TERMINAL_COLUMNS = ("dataset", "engine", "algorithm", "predict_us", "speedup_peer", "speedup",
                    "accuracy", "neighbours")


def _csv(kind):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return [kind(item) for item in items]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
    return parse


def _engine(name):
    try:
        parse_engine_name(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return name


def _first_call(text):
    if text in ("all", "jit", "none"):
        return text
    return _csv(_engine)(text)


def _shown(value):
    """A default as the command line writes it: ``5``, ``2``, ``500,2000,8000``, ``all``."""
    if isinstance(value, (list, tuple)):
        return "all" if list(value) == list(ENGINES) else ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def defaults_text(field):
    """The default of a ``BenchConfig`` field as the help shows it: ``"default X; --quick Y"``.

    Read from :class:`~nearkit.bench.protocol.BenchConfig` (its field defaults and
    ``quick_config``); ``"; --quick Y"`` only when ``--quick`` changes the value.
    """
    from nearkit.bench.protocol import BenchConfig

    normal = _shown(getattr(BenchConfig(), field))
    quick = _shown(getattr(BenchConfig.quick_config(), field))
    return f"default {normal}" + ("" if quick == normal else f"; --quick {quick}")


def register(subparsers):
    """Add the ``bench`` and ``report`` sub-commands to the ``nearkit`` parser."""
    bench = subparsers.add_parser(
        "bench", help="benchmark nearkit against scikit-learn, scikit-learn-intelex, FAISS, "
                      "SciPy, usearch and NumPy",
        description="Run the reproducible benchmark study and write results, report and plots.",
    )
    bench.add_argument("--datasets", type=_csv(str), metavar="A,B",
                       help=f"datasets ({defaults_text('datasets')})")
    bench.add_argument("--engines", type=_csv(_engine), metavar="E,F",
                       help=f"engines ({defaults_text('engines')}); known: {', '.join(ENGINES)}; "
                            "suffix [Nt] limits an engine to N threads")
    bench.add_argument("--k", type=_csv(int), metavar="1,3,5",
                       help=f"numbers of neighbours ({defaults_text('ks')})")
    bench.add_argument("--weights", type=_csv(str), metavar="W",
                       help=f"weighting schemes: {', '.join(WEIGHT_NAMES)} ({defaults_text('weights')})")
    bench.add_argument("--metric", type=_csv(str), metavar="M",
                       help=f"metrics: {', '.join(METRIC_NAMES)} ({defaults_text('metrics')})")
    bench.add_argument("--p", type=float,
                       help=f"Minkowski exponent for --metric minkowski ({defaults_text('p')})")
    bench.add_argument("--repeats", type=int, metavar="N",
                       help=f"stratified splits ({defaults_text('repeats')})")
    bench.add_argument("--iterations", type=int, metavar="N",
                       help="timed fits and predicts per engine and repeat "
                            f"({defaults_text('iterations')})")
    bench.add_argument("--threads", type=_csv(int), metavar="1,...",
                       help="extra thread counts for nearkit-auto and sklearn-auto "
                            f"({defaults_text('threads')}; all cores always run)")
    bench.add_argument("--seed", type=int,
                       help=f"seed of splits, orders and synthetic data ({defaults_text('seed')})")
    bench.add_argument("--baseline",
                       help=f"engine the speed-ups are measured against ({defaults_text('baseline')})")
    bench.add_argument("--beta", type=float, help=f"beta of the F-beta score ({defaults_text('beta')})")
    bench.add_argument("--sizes", type=_csv(int), metavar="N,M",
                       help=f"training-set sizes of the scaling study ({defaults_text('sizes')})")
    bench.add_argument("--no-scaling", action="store_true", help="skip the training-set size study")
    bench.add_argument("--no-cv", action="store_true",
                       help="skip the cross-validated choice of k and weights per dataset")
    bench.add_argument("--first-call", type=_first_call, metavar="WHICH",
                       help="engines whose first call is timed in fresh processes: all, jit, "
                            f"none or a comma-separated list ({defaults_text('first_call')})")
    bench.add_argument("--max-test", type=int, metavar="N",
                       help=f"test rows per split at most ({defaults_text('max_test')})")
    bench.add_argument("--quick", action="store_true",
                       help="small bundled data, offline, under a minute")
    bench.add_argument("--profile", action="store_true",
                       help="profile each engine's predict and split nearkit's into phases")
    bench.add_argument("--data-home", help="folder searched first for the dataset files")
    bench.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"output folder, created if missing (default {DEFAULT_OUT})")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")
    bench.set_defaults(func=run_bench)

    report = subparsers.add_parser(
        "report", help="rebuild report.md, results.csv and the plots from results.json",
        description="Rebuild report.md, results.csv and the PNG plots from DIR/results.json.",
    )
    report.add_argument("dir", metavar="DIR", help="folder holding results.json")
    report.set_defaults(func=run_report)


def config_from_args(args):
    """The checked :class:`~nearkit.bench.protocol.BenchConfig` the options describe.

    Raises
    ------
    ValueError
        Naming the option and the bad value (:func:`~nearkit.bench.checks.check_config`).
    """
    from nearkit.bench.protocol import BenchConfig

    overrides = {}
    for field, option in FIELD_OPTIONS.items():
        value = getattr(args, option[2:].replace("-", "_"), None)
        if value is not None:
            overrides[field] = value
    if args.no_scaling:
        overrides["sizes"] = []
    if args.no_cv:
        overrides["cv"] = False
    overrides["profile"] = bool(args.profile)
    config = BenchConfig.quick_config(**overrides) if args.quick else BenchConfig(**overrides)
    return check_config(config)


class RichProgress:
    """Progress bar on stderr (rich), fed by the protocol's ``begin`` and ``step`` calls."""

    def __init__(self, console):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task = None

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc_info):
        self.progress.stop()
        return False

    def begin(self, total):
        self.task = self.progress.add_task("starting", total=total)

    def step(self, text, advance=1):
        self.progress.update(self.task, description=text, advance=advance)


def summary_table(results):
    """The summary as a rich table (the same rows as report.md's summary)."""
    from nearkit.bench.report import summary_cells, summary_header, summary_rows

    table = Table(title="nearkit bench: summary (full tables in report.md)")
    for title in summary_header(results, TERMINAL_COLUMNS):
        table.add_column(title, overflow="fold")
    for cells in summary_rows(results):
        table.add_row(*summary_cells(cells, TERMINAL_COLUMNS, max_note=40))
    return table


def run_bench(args, console=None):
    """Run ``nearkit bench``; returns the exit code."""
    from nearkit.bench.protocol import run_benchmark
    from nearkit.bench.results import write_outputs

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file gets the whole table, not 80 columns
    try:
        config = config_from_args(args)
        check_out_dir(args.out)
    except ValueError as exc:
        Console(stderr=True).print(f"nearkit bench: {exc}", style="red", markup=False,
                                   highlight=False)
        return 2
    start = time.perf_counter()
    argv = ["nearkit", *sys.argv[1:]] if sys.argv and sys.argv[0].endswith("nearkit") else None
    if args.no_progress:
        results = run_benchmark(config, argv=argv or _argv_of(args))
    else:
        with RichProgress(Console(stderr=True)) as progress:
            results = run_benchmark(config, progress=progress, argv=argv or _argv_of(args))
    paths = write_outputs(results, args.out)
    console.print(summary_table(results))
    for name, entry in results["engines"].items():
        if not entry["available"]:
            console.print(f"skipped {name}: {entry['note']}")
    console.print(f"wrote {', '.join(p.name for p in paths)} to {args.out} "
                  f"in {time.perf_counter() - start:.0f} s")
    return _exit_code(results)


def _exit_code(results):
    """1 when a dataset could not be loaded or no engine ran on any dataset, else 0."""
    errors = Console(stderr=True)
    failed = {name: entry["error"] for name, entry in results["datasets"].items()
              if "error" in entry}
    for name, error in failed.items():
        errors.print(f"nearkit bench: dataset {name} not run: {error}", style="red",
                     markup=False, highlight=False)
    ran = any(record["status"] == "ok" for run in results["runs"]
              for record in run["engines"].values())
    if results["runs"] and not ran:
        errors.print("nearkit bench: every engine failed or was skipped on every dataset; "
                     "the reasons are in report.md", style="red")
    return 1 if failed or not ran else 0


def _argv_of(args):
    """A command line equivalent to the parsed options (for the stored environment)."""
    words = ["nearkit", "bench"]
    for option in ("datasets", "engines", "k", "weights", "metric", "threads", "sizes"):
        value = getattr(args, option, None)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", ",".join(str(v) for v in value)]
    for option in ("p", "repeats", "iterations", "seed", "baseline", "beta", "first_call",
                   "max_test", "data_home"):
        value = getattr(args, option, None)
        if isinstance(value, list):
            value = ",".join(value)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", str(value)]
    for flag in ("quick", "profile", "no_scaling", "no_cv"):
        if getattr(args, flag, False):
            words.append(f"--{flag.replace('_', '-')}")
    return words + ["--out", str(args.out)]


def run_report(args, console=None):
    """Run ``nearkit report DIR``; returns the exit code."""
    from nearkit.bench.results import build_outputs, load_results
    from nearkit.bench.schema import SchemaError

    console = console or Console()
    try:
        paths = build_outputs(args.dir)
    except FileNotFoundError as exc:
        Console(stderr=True).print(f"[red]nearkit report: {exc}")
        return 2
    except SchemaError as exc:
        Console(stderr=True).print(f"[red]nearkit report: {exc}")
        return 1
    console.print(summary_table(load_results(args.dir)))
    console.print(f"rebuilt {', '.join(p.name for p in paths[1:])} in {args.dir}")
    return 0
