"""The PNG chart of a report: profit per day as bars, with Chinese labels where a CJK font is
installed (any matplotlib finds; without one the chart is drawn anyway). matplotlib is
imported when a chart is drawn, never at start-up.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from core.bills.report import Report

_CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "Droid Sans Fallback",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


def _cjk_fonts() -> list[str]:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return [n for n in _CJK_FAMILIES if n in names]


def profit_chart(report: Report, out: Path) -> Path:
    """Draw profit per day of ``report`` to the PNG file ``out``; returns ``out``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    days = [r.key for r in report.daily]
    profits = [float(r.profit) for r in report.daily]  # float only for drawing the bars
    currency = "/".join(report.currencies)
    fonts = _cjk_fonts()
    rc: dict[str, Any] = {"font.family": "sans-serif", "font.sans-serif": [*fonts, "DejaVu Sans"],
          "axes.unicode_minus": False}  # fmt: skip
    import matplotlib

    with matplotlib.rc_context(rc), warnings.catch_warnings():  # type: ignore[arg-type]
        warnings.simplefilter("ignore")  # missing glyphs without a CJK font: drawn as boxes
        fig = Figure(figsize=(max(4.0, 0.7 * len(days) + 2), 3.6), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        colors = ["#2e7d32" if p >= 0 else "#c62828" for p in profits]
        ax.bar(days, profits, color=colors)
        ax.axhline(0, color="#555555", linewidth=0.8)
        span = f"{report.date_from or ''}..{report.date_to or ''}"
        ax.set_title(f"每日利润 {span}")
        ax.set_xlabel("日期")
        ax.set_ylabel(f"利润 ({currency})" if currency else "利润")
        ax.tick_params(axis="x", labelrotation=45)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    return out
