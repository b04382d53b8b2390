"""PNG of forecast against actual: the day-ahead forecasts issued at noon for the next day."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

ISSUE_HOUR = 12  # forecasts issued at 12:00 for the next local day (leads 12-36 h)


def next_day_chain(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of forecasts issued at noon covering the next day, one per target time."""
    noon = rows[rows["origin"].dt.hour == ISSUE_HOUR]
    next_day = noon[(noon["lead_h"] > 12) & (noon["lead_h"] <= 36)]
    return next_day.drop_duplicates("time").set_index("time").sort_index()


def plot_backtest(rows: pd.DataFrame, title: str, path: str | Path, days: int = 7) -> Path:
    """Write the last ``days`` days of the noon-issued next-day forecast, its band and the actual."""
    chain = next_day_chain(rows)
    if chain.empty:
        raise ValueError("no forecast issued at 12:00 in the backtest: nothing to plot")
    chain = chain[chain.index > chain.index[-1] - pd.Timedelta(days=days)]
    unit, factor = ("MW", 1e-3) if chain["actual"].abs().max() > 1e4 else ("kW", 1.0)
    figure, axes = plt.subplots(figsize=(11, 4))
    band = axes.fill_between(chain.index, chain["p10"] * factor, chain["p90"] * factor, color="tab:blue", alpha=0.2)
    band.set_label("P10-P90")
    axes.plot(chain.index, chain["actual"] * factor, color="black", linewidth=1.2, label="actual")
    axes.plot(chain.index, chain["model"] * factor, color="tab:blue", linewidth=1.2, label="forecast (P50)")
    naive = chain["seasonal_naive"] * factor
    axes.plot(chain.index, naive, color="tab:orange", linewidth=0.8, linestyle="--", label="seasonal naive")
    axes.set_ylabel(f"power [{unit}]")
    axes.set_title(f"{title}: next-day forecast issued at 12:00")
    axes.legend(loc="upper left", ncols=4, fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
