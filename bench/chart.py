"""bench.png: latency, throughput and CPU per request, direct against each gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {
    "direct": "#7f7f7f",
    "gateway": "#1f77b4",
    "gateway_redis": "#ff7f0e",
    "gateway_limits": "#d62728",
}


def draw(results: dict[str, Any], path: Path) -> None:
    # Imported here: matplotlib takes a while to load and only the chart needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    phases = results["phases"]
    labels = results["paths"]
    groups = list(dict.fromkeys((p["mode"], p["connections"]) for p in phases))
    names = list(labels)
    width = 0.8 / len(names)
    figure = Figure(figsize=(15, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    latency, rps, cpu = figure.subplots(1, 3)
    ticks = [f"{mode} c{connections}" for mode, connections in groups]
    for i, name in enumerate(names):
        rows = [_phase(phases, group, name) for group in groups]
        xs = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
        colour = COLOURS.get(name)
        p50 = [r["p50_ms"] for r in rows]
        p99 = [r["p99_ms"] for r in rows]
        latency.bar(xs, p50, width, color=colour, label=labels[name])
        latency.scatter(xs, p99, color=colour, marker="_", s=300, linewidths=2)
        latency.scatter(xs, [r["p90_ms"] for r in rows], color=colour, marker=".", s=40)
        rps.bar(xs, [r["rps"] for r in rows], width, color=colour, label=labels[name])
        if name != "direct":
            cpu.bar(xs, [r["cpu_ms_per_request"] for r in rows], width, color=colour)
    latency.set_yscale("log")
    latency.set_title("Latency (ms): bar p50, dot p90, dash p99")
    rps.set_title("Requests/s")
    rps.axhline(1500, color="black", linestyle=":", linewidth=1)
    cpu.set_title("Gateway CPU per request (ms)")
    cpu.axhline(0.7, color="black", linestyle=":", linewidth=1)
    for axes in (latency, rps, cpu):
        axes.set_xticks(range(len(groups)), ticks)
        axes.grid(axis="y", alpha=0.3)
    figure.legend(
        *latency.get_legend_handles_labels(), loc="outside lower center", ncols=len(names)
    )
    machine = results["machine"]
    figure.suptitle(
        f"Tollgate bench: {machine['nproc']} CPUs, Python {machine['python']}, "
        f"{results['settings']['load_client']} (dotted lines: targets)"
    )
    figure.savefig(path, dpi=100)


def _phase(phases: list[dict[str, Any]], group: tuple[str, int], name: str) -> dict[str, Any]:
    mode, connections = group
    return next(
        p
        for p in phases
        if p["mode"] == mode and p["connections"] == connections and p["path"] == name
    )
