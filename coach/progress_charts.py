"""Progress as pictures (matplotlib, Agg backend): mastery per category over time, and what falls due.

    fig = mastery_figure(*mastery_series(reviews, 30, now))
    fig = forecast_figure(due_forecast(schedule, 14, now))

The numbers come from coach.state.report (pure); this module only draws them.
Categories are labelled by their letter (A, B, ...) with the full names in the
legend's title, because matplotlib's default font has no Chinese glyphs.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered for the page

import matplotlib.pyplot as plt  # noqa: E402

from .state.report import day_label  # noqa: E402


def _letter(category: str) -> str:
    head = category.split(".", 1)[0].strip()
    return head if len(head) <= 3 else category[:3]


def mastery_figure(starts: list[float], series: dict[str, list[float | None]]):
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    labels = [day_label(t) for t in starts]
    for category, values in series.items():
        xs = [i for i, v in enumerate(values) if v is not None]
        ax.plot(xs, [values[i] for i in xs], marker="o", markersize=3, label=_letter(category))
    ax.set_ylim(0, 100)
    ax.set_ylabel("mastery (latest score, mean)")
    step = max(1, len(labels) // 8)
    ax.set_xticks(range(0, len(labels), step), labels[::step])
    if not series:
        ax.text(0.5, 0.5, "nothing practised yet", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    if series:
        ax.legend(loc="lower right", fontsize=8, ncol=min(5, len(series)))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def forecast_figure(forecast: list[tuple[float, int]]):
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=100)
    labels = [("today" if i == 0 else day_label(t)) for i, (t, _) in enumerate(forecast)]
    counts = [n for _, n in forecast]
    ax.bar(range(len(counts)), counts, color=["#d97706"] + ["#2563eb"] * (len(counts) - 1))
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("questions due")
    ax.set_xlabel("overdue questions count today", fontsize=8, color="#6b7280")
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    plt.close(fig)
    return fig
