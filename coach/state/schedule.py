"""FSRS scheduling (the ``fsrs`` package, Anki's default scheduler) for graded practice answers.

- ``rating_for(score, contradicted)``: a confirmed grade -> an FSRS rating:
  ``rating_for(85, 0) -> Good`` (most key points covered), ``rating_for(60, 0) -> Hard``
  (some), ``rating_for(30, 0) -> Again`` (few), ``rating_for(95, 1) -> Again`` (a point
  contradicted: the answer says something wrong, whatever else it covers).
- ``review(card_json, rating, when)`` -> ``(card_json, due)``: one review through
  ``fsrs.Scheduler``; ``card_json`` is None for a question never practised.
- ``leitner_history(box, due, last_score)``: the initial review history that
  stands for a question in a Leitner box of the old progress file, so its FSRS
  card starts where the box left it (box 3 = two successful reviews, spaced by
  the old box intervals, the last one an interval before the old due date).

Fuzzing is off so a schedule is reproducible (tests, and two replicas agree).
"""

from __future__ import annotations

from datetime import datetime, timezone

from fsrs import Card, Rating, ReviewLog, Scheduler

GOOD_AT, HARD_AT = 80.0, 50.0  # the old Leitner promote / demote thresholds
BOX_INTERVALS_S = (0, 86_400, 3 * 86_400, 7 * 86_400, 21 * 86_400)  # the old boxes 1..5
_SCHEDULER = Scheduler(enable_fuzzing=False)


def rating_for(score: float, contradicted: int = 0) -> Rating:
    """Good / Hard / Again from the share of key points covered (0-100) and the contradicted points."""
    if not 0.0 <= score <= 100.0:
        raise ValueError(f"score {score} is outside 0..100")
    if contradicted < 0:
        raise ValueError(f"contradicted must be 0 or more, got {contradicted}")
    if contradicted or score < HARD_AT:
        return Rating.Again
    return Rating.Good if score >= GOOD_AT else Rating.Hard


def to_datetime(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def review(card_json: str | None, rating: Rating, when: float) -> tuple[str, float]:
    """The card after one review at unix time ``when``, and its next due time (unix)."""
    card = Card.from_json(card_json) if card_json else Card(card_id=1, due=to_datetime(when))
    card, _ = _SCHEDULER.review_card(card, rating, review_datetime=to_datetime(when))
    return card.to_json(), card.due.timestamp()


def replay(history: list[tuple[float, Rating]]) -> tuple[str, float]:
    """A card built from (unix time, rating) reviews, oldest first: ``Scheduler.reschedule_card``."""
    if not history:
        raise ValueError("an empty review history has no card")
    logs = [ReviewLog(card_id=1, rating=r, review_datetime=to_datetime(t), review_duration=None) for t, r in history]
    card = _SCHEDULER.reschedule_card(Card(card_id=1, due=to_datetime(history[0][0])), logs)
    return card.to_json(), card.due.timestamp()


def leitner_history(box: int, due: float, last_score: float) -> list[tuple[float, Rating]]:
    """Reviews standing for a Leitner box: ``box - 1`` Good ones ending ``BOX_INTERVALS_S[box-1]`` before due.

    Box 1 is one review rated from the last score (Again below 50, else Hard); the
    rest are Good, because a question only climbed a box on a score of 80 or more.
    """
    if not 1 <= box <= len(BOX_INTERVALS_S):
        raise ValueError(f"Leitner box {box} is outside 1..{len(BOX_INTERVALS_S)}")
    if box == 1:
        return [(due, Rating.Again if last_score < HARD_AT else Rating.Hard)]
    times, t = [], due - BOX_INTERVALS_S[box - 1]
    for b in range(box - 1, 0, -1):  # the reviews that moved it into box b+1, newest first
        times.append(t)
        t -= max(BOX_INTERVALS_S[b - 1], 60.0)
    return [(at, Rating.Good) for at in reversed(times)]


def card_stability(card_json: str | None) -> float | None:
    return Card.from_json(card_json).stability if card_json else None


def next_entry(person: str, section, score: float, contradicted: int, now: float,
               card_json: str | None, attempts: int):
    """The ScheduleEntry and Review one graded attempt produces (pure; every adapter's ``record`` uses it)."""
    from .base import Review, ScheduleEntry, check_person

    check_person(person)
    rating = rating_for(float(score), int(contradicted))
    card, due = review(card_json, rating, now)
    entry = ScheduleEntry(person, section.id, section.category, due, float(score), attempts + 1, card)
    return entry, Review(person, section.id, section.category, float(score), int(contradicted), int(rating), now)


def migrated_card(box: int, due: float, last_score: float) -> str:
    """The FSRS card for a Leitner entry: its state from ``leitner_history``, its due date kept as it was."""
    card_json, _ = replay(leitner_history(box, due, last_score))
    card = Card.from_json(card_json)
    card.due = to_datetime(due)
    return card.to_json()
