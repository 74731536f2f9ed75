"""Progress you can see: mastery over time and due forecasts (pure, worked out by hand), the charts,
the Slack text, and the Anki export (read back from the .apkg) from the library and the CLI."""

from __future__ import annotations

import sqlite3
import zipfile

import pytest

from coach.bank.corpus import parse_bank
from coach.state import MemoryProgress, Review, ScheduleEntry, SQLiteProgress
from coach.state.report import DAY_S, day_start, due_forecast, mastery_series, summary

BANK = """\
## A. 架构
**1. KV Cache 原理？**
推理时缓存历史 K/V，减少重复计算。

**2. 残差连接的作用？**
缓解梯度消失，`x + f(x)`，**稳定**深层训练。

## B. 训练
**3. 为什么要 warmup？**
初期梯度不稳定 <b>&。
"""
SECTIONS = {s.id: s for s in parse_bank(BANK, "bank.md")}
D0 = day_start(1_700_000_000.0)  # a UTC midnight


def rev(sid, cat, score, at):
    return Review("ana", sid, cat, score, 0, 3, at)


def entry(sid, due, last=50.0):
    return ScheduleEntry("ana", sid, "A", due, last, 1, "{}")


def test_mastery_is_the_mean_latest_score_per_category_per_day():
    reviews = [rev("Q1", "A", 40, D0 + 10), rev("Q2", "A", 60, D0 + 20), rev("Q1", "A", 90, D0 + DAY_S + 5),
               rev("Q3", "B", 70, D0 + 2 * DAY_S + 1)]
    starts, series = mastery_series(reviews, 4, D0 + 3 * DAY_S + 100)
    assert starts == [D0 + i * DAY_S for i in range(4)]
    assert series == {"A": [50.0, 75.0, 75.0, 75.0], "B": [None, None, 70.0, 70.0]}
    assert mastery_series([], 3, D0)[1] == {}
    with pytest.raises(ValueError, match="days"):
        mastery_series(reviews, 0, D0)


def test_forecast_counts_overdue_today_and_drops_what_is_beyond():
    now = D0 + 3600
    sched = [entry("Q1", D0 - 5 * DAY_S), entry("Q2", D0 + 7200), entry("Q3", D0 + DAY_S + 1),
             entry("Q4", D0 + 9 * DAY_S)]
    assert due_forecast(sched, 3, now) == [(D0, 2), (D0 + DAY_S, 1), (D0 + 2 * DAY_S, 0)]
    s = summary([], sched, now)
    assert [e.section_id for e in s.due_now] == ["Q1"] and [e.section_id for e in s.due_today] == ["Q2"]


def test_charts_are_drawn():
    from matplotlib.figure import Figure

    from coach.progress_charts import forecast_figure, mastery_figure

    fig = mastery_figure(*mastery_series([rev("Q1", "A. 架构", 40, D0)], 5, D0 + 4 * DAY_S))
    assert isinstance(fig, Figure) and fig.axes[0].get_legend().get_texts()[0].get_text() == "A"
    assert len(fig.axes[0].lines[0].get_xdata()) == 5
    bars = forecast_figure([(D0, 2), (D0 + DAY_S, 1)]).axes[0].patches
    assert [b.get_height() for b in bars] == [2, 1]


def test_slack_progress_text_is_the_persons_summary():
    from coach.slack.format import progress_mrkdwn

    store = MemoryProgress()
    store.record("slack:U1", SECTIONS["Q1"], 30.0, now=D0)
    store.record("slack:U1", SECTIONS["Q3"], 95.0, now=D0)
    text = progress_mrkdwn(store.category_stats("slack:U1"), store.schedule("slack:U1"), SECTIONS, D0 + 3600)
    assert "A. 架构: 1 attempt, average 30" in text and "B. 训练: 1 attempt, average 95" in text
    assert "*Due now (2):*" in text and "Q1 KV Cache 原理？: last 30" in text
    assert "Q3 为什么要 warmup？" in text and "初期梯度不稳定 &lt;b&gt;" not in text  # titles only, escaped
    assert "Due in the coming days" in text
    assert "Nothing recorded yet" in progress_mrkdwn([], [], SECTIONS, D0)


def read_apkg(path):
    with zipfile.ZipFile(path) as z:
        name = "collection.anki21" if "collection.anki21" in z.namelist() else "collection.anki2"
        data = z.read(name)
    db_path = path.with_suffix(".anki2")
    db_path.write_bytes(data)
    db = sqlite3.connect(db_path)
    try:
        return [r[0].split("\x1f") for r in db.execute("SELECT flds FROM notes ORDER BY sfld")]
    finally:
        db.close()


def test_anki_deck_has_the_weak_questions_with_reference_answers(tmp_path):
    from coach.anki import export_weak_deck

    store = SQLiteProgress(tmp_path / "p.sqlite3")
    store.record("ana", SECTIONS["Q2"], 40.0, now=D0)
    store.record("ana", SECTIONS["Q3"], 10.0, now=D0)
    store.record("ana", SECTIONS["Q1"], 95.0, now=D0)  # not weak
    store.record("bo", SECTIONS["Q1"], 5.0, now=D0)  # someone else's
    path = export_weak_deck(store, "ana", SECTIONS, tmp_path / "ana.apkg")
    notes = read_apkg(path)
    assert sorted(n[3] for n in notes) == ["Q2", "Q3"]
    q2 = next(n for n in notes if n[3] == "Q2")
    assert q2[0] == "残差连接的作用？" and q2[1] == "A. 架构" and q2[4] == "40"
    assert "<code>x + f(x)</code>" in q2[2] and "<b>稳定</b>" in q2[2]
    q3 = next(n for n in notes if n[3] == "Q3")
    assert "&lt;b&gt;&amp;" in q3[2], "the reference answer's own markup is escaped"
    assert export_weak_deck(store, "carol", SECTIONS, tmp_path / "carol.apkg") is None
    assert not (tmp_path / "carol.apkg").exists()


def test_cli_export_anki(tmp_path, monkeypatch, capsys):
    from coach.cli import main
    from coach.bank.corpus import load_corpus
    from coach.settings import ROOT

    bank = {s.id: s for s in load_corpus(ROOT / "corpus")}
    store = SQLiteProgress(tmp_path / "data" / "progress.sqlite3")
    store.record("local", bank["Q13"], 20.0, now=D0)
    monkeypatch.setenv("COACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COACH_PROGRESS_URL", raising=False)
    out = tmp_path / "deck.apkg"
    assert main(["export-anki", "--out", str(out)]) == 0
    assert "1 weak question(s) of local" in capsys.readouterr().out
    (note,) = read_apkg(out)
    assert note[3] == "Q13" and "K/V" in note[2]
    assert main(["export-anki", "--person", "nobody", "--out", str(tmp_path / "n.apkg")]) == 0
    assert "no progress recorded" in capsys.readouterr().out
    monkeypatch.setenv("COACH_PROGRESS_URL", "mysql://x")
    assert main(["export-anki"]) == 2
    assert "COACH_PROGRESS_URL" in capsys.readouterr().err
