"""``--plot FILE.png``: the latency and catch-time distributions (matplotlib, optional).

matplotlib is an optional extra: it is imported only here, only when a plot is asked
for, and its absence is a clear usage error (:class:`PlotUnavailableError`), not a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["PLOTTED", "PlotUnavailableError", "require_matplotlib", "plot"]

#: The sections drawn, one panel each, when they were run.
PLOTTED = ("gp-latency", "catch-time")


class PlotUnavailableError(Exception):
    """``--plot`` was asked for but matplotlib cannot be imported."""


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or PlotUnavailableError."""
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError as exc:
        raise PlotUnavailableError(
            f"--plot needs matplotlib, which cannot be imported ({exc}); install it with "
            "'pip install matplotlib', or leave --plot out") from None
    return plt


def plot(doc: dict[str, Any], path: str) -> list[str]:
    """Draw what ``doc`` (the JSON document) holds into ``path``; the panels drawn."""
    plt = require_matplotlib()
    sections = doc["sections"]
    panels = [name for name in PLOTTED
              if sections.get(name, {}).get("status") == "ok"]
    if not panels:
        raise PlotUnavailableError("--plot draws the gp-latency and catch-time sections; "
                              "neither was run (see --only)")
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        if name == "gp-latency":
            _latency(ax, sections[name]["data"])
        else:
            _detection(ax, sections[name]["data"])
    env = doc["env"]
    fig.suptitle(f"rcu-pgdat bench, {env['date']}, Python {env['python']}, {env['cpu']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return panels


def _latency(ax: Any, data: dict[str, Any]) -> None:
    """Cumulative distribution of grace-period latency per grid cell (rcu keys)."""
    for cell in data["cells"]:
        for key, samples in sorted(cell["latencies"].items()):
            if not key.startswith("rcu:") or not samples:
                continue
            xs = sorted(s * 1e3 for s in samples)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post",
                    label=f"{key} {cell['nodes']} nodes, {cell['readers']} readers")
    ax.set_xscale("log")
    ax.set_xlabel("grace-period latency (ms, log)")
    ax.set_ylabel("fraction of grace periods")
    ax.set_title("Grace-period latency (CDF)")
    ax.legend(fontsize=6)


def _detection(ax: Any, data: dict[str, Any]) -> None:
    """Seconds to catch per trial, one column per (target, mode); misses at the top."""
    budget = float(data["budget"])
    labels: list[str] = []
    for t_name, target in data["targets"].items():
        for mode, trials in target["modes"].items():
            x = len(labels)
            labels.append(f"{t_name}\n{mode}")
            hit = [t["seconds"] for t in trials if t["caught"]]
            miss = [t for t in trials if not t["caught"]]
            ax.scatter([x] * len(hit), hit, s=14, color="tab:blue")
            if miss:
                ax.scatter([x] * len(miss), [budget * 1.5] * len(miss), marker="x",
                           color="tab:red", s=20)
    ax.axhline(budget, color="grey", lw=0.6, ls="--")
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-4, min(1e-3, budget / 1e4)), top=budget * 3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_ylabel("seconds to catch (log); x = missed within the budget")
    ax.set_title("Time to catch each bug")
