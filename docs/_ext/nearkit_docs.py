"""Tables and command help read from nearkit itself, so the pages cannot drift from the code.

Directives:

``nearkit-metric-table``
    The metric table (:data:`nearkit.metrics.METRICS`) with the engines that search each
    metric (:data:`nearkit.search.VALID_METRICS`).
``nearkit-engine-table``
    The search engines (:data:`nearkit.search.ENGINES`): name, class, metrics.
``nearkit-dataset-table``
    The five report datasets: rows, features, target, checksum, pinned source.
``nearkit-cli``
    ``nearkit --help`` and the help of every sub-command registered in
    :data:`nearkit.cli.SUBCOMMANDS` (new commands appear without editing the page).
"""

from __future__ import annotations

import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

KIND_NAMES = {0: "sum of squares", 1: "sum of absolute differences", 2: "largest difference",
              3: "sum of p-th powers"}
CORRECTION_NAMES = {0: "square root", 1: "none", 2: "p-th root", 3: "half"}


def _list_table(header, rows, widths=None):
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(("   * - " if i == 0 else "     - ") + (cell or "–"))
    return lines


def _first_line(obj):
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


class _GeneratedRST(SphinxDirective):
    has_content = False

    def lines(self):
        raise NotImplementedError

    def run(self):
        node = nodes.container()
        nested_parse_with_titles(self.state, StringList(self.lines(), source="nearkit_docs"),
                                 node)
        return node.children


class MetricTable(_GeneratedRST):
    def lines(self):
        from nearkit.metrics import METRICS
        from nearkit.search import VALID_METRICS

        rows = []
        for spec in METRICS.values():
            engines = [name for name, metrics in VALID_METRICS.items() if spec.name in metrics]
            prepare = {"whiten": "whitening by ``VI``'s square root",
                       "normalize": "rows scaled to unit length"}.get(spec.prepare, "")
            params = ", ".join(f"``{p}``" for p in spec.params)
            if spec.uses_p:
                params = "``p`` (the estimator parameter)"
            rows.append([
                f"``{spec.name}``",
                ", ".join(f"``{a}``" for a in spec.aliases),
                f"``{spec.formula}``",
                f"{KIND_NAMES[spec.kind]}; {CORRECTION_NAMES[spec.correction]}",
                prepare,
                params,
                ", ".join(f"``{e}``" for e in engines),
            ])
        return _list_table(["metric", "aliases", "distance", "surrogate; correction",
                            "preparation", "parameters", "engines"], rows)


class EngineTable(_GeneratedRST):
    def lines(self):
        from nearkit.search import ENGINES, VALID_METRICS

        rows = [[f"``{name}``", f":class:`~{cls.__module__}.{cls.__qualname__}`",
                 _first_line(cls), ", ".join(f"``{m}``" for m in VALID_METRICS[name])]
                for name, cls in ENGINES.items()]
        return _list_table(["``algorithm=``", "class", "what it does", "metrics"], rows,
                           widths=[12, 20, 43, 25])


class BenchEngineTable(_GeneratedRST):
    def lines(self):
        from nearkit.bench.engines import ENGINES

        rows = [[f"``{name}``", spec.description] for name, spec in ENGINES.items()]
        return _list_table(["engine", "what it runs"], rows, widths=[25, 75])


class DatasetTable(_GeneratedRST):
    def lines(self):
        from nearkit.datasets._registry import SPECS

        rows = []
        for spec in SPECS.values():
            rows.append([
                f"``{spec.name}``",
                f"{spec.n_rows:,}" + (f" ({spec.n_rows - spec.n_duplicates:,} after dropping "
                                      "repeated tracks)" if spec.n_duplicates else ""),
                str(len(spec.feature_names)),
                spec.target_rule,
                f"{spec.positive_fraction:.1%}",
                f"``{spec.repo}`` at ``{spec.commit[:10]}``",
                f"``{spec.sha256}``",
            ])
        return _list_table(["name", "rows", "features", "target (y = 1)", "positives",
                            "pinned source", "sha256"], rows)


class CommandHelp(_GeneratedRST):
    def lines(self):
        import argparse

        from nearkit.cli import build_parser

        parser = build_parser()
        out = ["``nearkit``", "-" * 11, "", "::", ""]
        out += ["   " + line for line in _help(parser).splitlines()] + [""]
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in actions:
            for name, sub in action.choices.items():
                title = f"``nearkit {name}``"
                out += [title, "-" * len(title), "", "::", ""]
                out += ["   " + line for line in _help(sub).splitlines()] + [""]
        return out


def _help(parser):
    import os

    # a fixed width, so the page does not depend on the terminal of the build
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _reexported_data_comment(app, what, name, obj, options, lines):
    """The ``#:`` comment of a module constant documented under the package that re-exports
    it (``nearkit.search.SERIAL_WORK`` is defined in ``nearkit.search._threads``): autodoc
    looks for the comment in the re-exporting module only, and would otherwise show the
    docstring of the value's type."""
    import sys

    from sphinx.pycode import ModuleAnalyzer

    if what != "data":
        return
    package, _, attr = name.rpartition(".")
    type_doc = (inspect.getdoc(type(obj)) or "").strip().splitlines()
    if lines and not (type_doc and lines[0].strip() == type_doc[0].strip()):
        return
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith(package + ".") or getattr(module, attr, None) is not obj:
            continue
        try:
            comments = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        except Exception:  # a module without source
            continue
        if ("", attr) in comments:
            lines[:] = list(comments[("", attr)])
            return
    lines[:] = []


def setup(app):
    # before numpydoc (priority 500) rewrites the lines
    app.connect("autodoc-process-docstring", _reexported_data_comment, priority=400)
    app.add_directive("nearkit-bench-engine-table", BenchEngineTable)
    app.add_directive("nearkit-metric-table", MetricTable)
    app.add_directive("nearkit-engine-table", EngineTable)
    app.add_directive("nearkit-dataset-table", DatasetTable)
    app.add_directive("nearkit-cli", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
