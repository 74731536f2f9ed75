"""What a person's progress says, as numbers (pure): mastery over time, what falls due, weak questions.

- ``mastery_series(reviews, days, now)``: per category, for each of the last ``days``
  days, the mean of the latest score of every question of that category reviewed by
  the end of that day (a question answered 40 then 90 counts 90 from that day on).
- ``due_forecast(schedule, days, now)``: questions falling due on each of the next
  ``days`` days; anything already overdue counts on day 0 (today).
- ``summary(stats, schedule, now)``: the text parts both front ends show.

Days are UTC calendar days (``day_start``), so two replicas draw the same chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .base import CategoryStat, Review, ScheduleEntry

DAY_S = 86_400


def day_start(t: float) -> float:
    d = datetime.fromtimestamp(t, tz=timezone.utc)
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()


def day_label(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%m-%d")


def mastery_series(reviews: list[Review], days: int, now: float) -> tuple[list[float], dict[str, list[float | None]]]:
    """(day starts, {category: [mastery 0-100 or None before its first review, ...]}), oldest day first.

    ``mastery_series([Review(.., "Q1", "A", 40, at=d0), Review(.., "Q1", "A", 90, at=d1)], 2, d1)``
    -> ``([d0, d1], {"A": [40.0, 90.0]})``.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    first = day_start(now) - (days - 1) * DAY_S
    starts = [first + i * DAY_S for i in range(days)]
    ordered = sorted(reviews, key=lambda r: r.at)
    series: dict[str, list[float | None]] = {c: [] for c in sorted({r.category for r in reviews})}
    latest: dict[str, dict[str, float]] = {c: {} for c in series}
    i = 0
    for start in starts:
        end = start + DAY_S
        while i < len(ordered) and ordered[i].at < end:
            r = ordered[i]
            latest[r.category][r.section_id] = r.score
            i += 1
        for c in series:
            scores = latest[c]
            series[c].append(round(sum(scores.values()) / len(scores), 1) if scores else None)
    return starts, series


def due_forecast(schedule: list[ScheduleEntry], days: int, now: float) -> list[tuple[float, int]]:
    """[(day start, questions due that day)] for today and the next ``days - 1`` days; overdue counts today."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    today = day_start(now)
    counts = [0] * days
    for e in schedule:
        i = max(0, int((day_start(e.due) - today) // DAY_S))
        if i < days:
            counts[i] += 1
    return [(today + i * DAY_S, n) for i, n in enumerate(counts)]


@dataclass(frozen=True)
class Summary:
    categories: tuple[CategoryStat, ...]
    due_now: tuple[ScheduleEntry, ...]  # due at ``now``, longest overdue first
    due_today: tuple[ScheduleEntry, ...]  # due later today (UTC)
    weak: tuple[ScheduleEntry, ...]  # last score under 80, weakest first
    forecast: tuple[tuple[float, int], ...]  # the next 7 days


def summary(stats: list[CategoryStat], schedule: list[ScheduleEntry], now: float, weak_below: float = 80.0,
            days: int = 7) -> Summary:
    end_of_today = day_start(now) + DAY_S
    return Summary(tuple(stats), tuple(e for e in schedule if e.due <= now),
                   tuple(e for e in schedule if now < e.due < end_of_today),
                   tuple(sorted((e for e in schedule if e.last_score < weak_below),
                                key=lambda e: (e.last_score, e.section_id))),
                   tuple(due_forecast(schedule, days, now)))


def next_days(now: float, days: int) -> list[str]:
    return [day_label(day_start(now) + i * DAY_S) for i in range(days)]


__all__ = ["mastery_series", "due_forecast", "summary", "Summary", "day_start", "day_label", "next_days"]
