"""The benchmark study's headline table, on scikit-learn's bundled data, in seconds.

``nearkit bench --quick`` runs the study offline on iris and breast_cancer.  The same from
Python: :class:`nearkit.bench.BenchConfig` ``.quick_config()`` (here without the first-call and
scaling sections, which start fresh processes), :func:`nearkit.bench.run_benchmark`, then the
summary table of ``report.md`` (led by the speed-up against the fastest peer of each dataset)
and its findings.  The full study is
``nearkit bench --out bench-out`` on the five report datasets (see the user guide).
"""

import logging

from nearkit.bench import BenchConfig, run_benchmark
from nearkit.bench.findings import findings
from nearkit.bench.report import summary_cells, summary_header, summary_rows

logging.basicConfig(level=logging.WARNING, format="%(message)s")  # e.g. an engine skipped

config = BenchConfig.quick_config(first_call="none", scaling_engines=[])
results = run_benchmark(config)

columns = ("dataset", "engine", "algorithm", "predict_us", "speedup_peer", "speedup", "accuracy",
           "neighbours")
rows = [summary_header(results, columns)]
rows += [summary_cells(cells, columns, max_note=40) for cells in summary_rows(results)]
widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
for n, row in enumerate(rows):
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if n == 0:
        print("  ".join("-" * width for width in widths))
print()
for sentence in findings(results):
    print("-", sentence)
