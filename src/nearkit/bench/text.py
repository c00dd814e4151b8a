"""Formatting of numbers, intervals and markdown tables for the report and the terminal."""

from __future__ import annotations

import math

DASH = "–"


def num(value, digits=3):
    """A number with about ``digits`` significant figures, or a dash for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.{max(0, digits - 2)}e}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def with_ci(point, low, high, scale=1.0, digits=3):
    """``point [low, high]`` scaled, e.g. seconds to milliseconds."""
    if point is None:
        return DASH
    text = num(point * scale, digits)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return text
    return f"{text} [{num(low * scale, digits)}, {num(high * scale, digits)}]"


def mean_ci(ci, scale=1.0, digits=3):
    return with_ci(ci["mean"], ci["low"], ci["high"], scale, digits)


def median_text(ci, scale=1.0, digits=3):
    return with_ci(ci["median"], ci["low"], ci["high"], scale, digits)


def ratio_text(res):
    """Kalibera-Jones style: ``'3.2× [2.9, 3.5]'`` (above 1: faster than the baseline)."""
    if res is None:
        return DASH
    return f"{with_ci(res['ratio'], res['low'], res['high'], 1.0, 3)}×"


def speed_sentence(res, engine, baseline, what="predicts"):
    """``'nearkit-auto predicts 3.2 times faster than sklearn-auto, 95% CI [2.9, 3.5]'``."""
    ratio, low, high = res["ratio"], res["low"], res["high"]
    ci = "" if low is None or not math.isfinite(low) else f", 95% CI [{num(low)}, {num(high)}]"
    if ratio >= 1:
        return f"{engine} {what} {num(ratio)} times faster than {baseline}{ci}"
    inverse = "" if not ci else f", 95% CI [{num(1 / high)}, {num(1 / low)}]"
    return f"{engine} {what} {num(1 / ratio)} times slower than {baseline}{inverse}"


def table(header, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
