"""The Gradio app: chat with citation cards, and practice with a point-by-point grade.

    python app.py [--host 127.0.0.1] [--port 7860]      (or COACH_HOST / COACH_PORT; other COACH_* as usual)

Builds the index if it is missing (through coach.pipeline.build_coach), then serves.
The three outcomes look different: an answer streams into the chat with citation cards; related
material gets its own box and heading (RELATED_HEADING) and its cards are headed as related, not as
citations; a decline gets the amber box with one-click nearby questions, or the bank's categories
for a clearly off-topic question.  This file only wires the UI: answering is coach.answering.answer.Coach, grading
coach.grader, question choice and follow-up drills coach.practice, progress per person coach.state.
The functions above ``build_ui`` turn their records into Markdown and are importable without gradio.

Who is practising: the login when COACH_AUTH_FILE configures Gradio's ``auth``, else a
name entered once on the page (kept in the browser's localStorage: gr.BrowserState),
else "local" (the person the old single-user progress file migrated into).

Named API endpoints (for gradio_client, e.g. bench/app_load.py):
  /ask(question, k)   -> dict (text, outcome, citations, declined, suggestions, categories, notices, mode, ...),
                         with this client session's own history kept server-side
  /new_conversation() -> clears that history
  /practice_grade(section_id, answer, name) -> dict (person, score, saved, note): grade and record
                         an answer for the person (the login when there are logins, else ``name``, else "local")
  /my_progress(name)  -> dict (person, attempts, categories, due): that person's progress only
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from coach.logs import configure_logging
from coach.settings import Settings
from coach.text import QueryError, normalize

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the only network here is 127.0.0.1
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PASTE_LIMIT = 20_000
EMPTY_HINT = "请输入一个问题，例如「KV Cache 的原理是什么？」（Type a question first.）"
RELATED_HEADING = "题库中没有直接回答这个问题的条目 · related material"
_CITE = re.compile(r"\[((?:[\w-]+:)?[QIJ]\d+)\]")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)

CSS = """
.decline-box { border: 2px solid #d97706; background: #fffbeb; border-radius: 8px; padding: 8px 12px; }
.decline-box * { color: #92400e !important; }
.related-box { border: 2px dashed #7c3aed; background: #f5f3ff; border-radius: 8px; padding: 8px 12px; }
.related-box * { color: #5b21b6 !important; }
.notice-box { border-left: 4px solid #2563eb; padding-left: 8px; }
.cite-cards { border-top: 1px solid #e5e7eb; }
.grade-box { border: 1px solid #d1d5db; border-radius: 8px; padding: 8px 12px; }
.graded-answer { border-left: 3px solid #9ca3af; padding-left: 8px; white-space: pre-wrap; }
mark.ev-covered { background: #bbf7d0; } mark.ev-partial { background: #fef08a; }
mark.ev-contradicted { background: #fecaca; text-decoration: underline wavy #b91c1c; }
"""


# -- presentation (pure) ----------------------------------------------------------------------------------
def escape_html(text: str) -> str:
    """Neutralise HTML outside code: ``<img onerror=...>`` shows as text; Markdown (``>`` quotes, code) still works."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else p.replace("&", "&amp;").replace("<", "&lt;") for i, p in enumerate(parts))


def link_citations(text: str) -> str:
    """``[Q13]`` -> a link to the card of Q13 below the chat."""
    return _CITE.sub(lambda m: f"[\\[{m.group(1)}\\]](#card-{m.group(1).replace(':', '-')})", text)


def prepare_question(raw: str, max_chars: int) -> tuple[str | None, list[str]]:
    """The text to send and the notices to show; ``None`` means: do not send (empty)."""
    if not isinstance(raw, str) or not normalize(raw):
        return None, [EMPTY_HINT]
    notices = []
    text = raw
    if len(text) > PASTE_LIMIT:
        notices.append(f"粘贴内容有 {len(raw):,} 个字符，超过 {PASTE_LIMIT:,}，已截断。")
        text = text[:PASTE_LIMIT]
    cleaned = normalize(text)
    if len(cleaned) > max_chars:
        notices.append(f"问题有 {len(cleaned):,} 个字符，只使用前 {max_chars:,} 个（每次请只问一个话题）。")
        cleaned = cleaned[:max_chars]
    return cleaned, notices


def card_markdown(section) -> str:
    """One citation card: id, category, question, the full reference answer (code highlighted)."""
    anchor = section.id.replace(":", "-")
    return (f'<a id="card-{anchor}"></a>\n\n#### [{section.id}] {escape_html(section.title)}\n'
            f"*{escape_html(section.category)}* · `{section.source}:{section.line}`\n\n{escape_html(section.body)}\n")


def cards_markdown(answer, sections: dict) -> str:
    if answer.declined or not answer.citations:
        return ""
    cards = [card_markdown(sections[c.id]) for c in answer.citations if c.id in sections]
    head = "### 相关内容 Related material（不是答案 not an answer）" if answer.outcome == "related" else "### 引用 Citations"
    return head + "\n\n" + "\n\n---\n\n".join(cards)


def details_markdown(answer) -> str:
    """Per-stage scores of the retrieved sections (None: the stage did not run)."""
    fmt = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
    rows = ["| id | question | BM25 | dense | fused | rerank | final |", "|---|---|---|---|---|---|---|"]
    for h in answer.hits:
        rows.append(f"| {h.id} | {escape_html(h.title)} | {fmt(h.bm25)} | {fmt(h.dense)} | {fmt(h.fused)} | "
                    f"{fmt(h.rerank)} | {fmt(h.score)} |")
    timing = ", ".join(f"{k} {v:.0f} ms" for k, v in answer.timings_ms.items())
    return (f"**retrieval details** · query used: `{escape_html(answer.rewritten_query)}` · rerank: {answer.rerank_state}"
            f"\n\n" + "\n".join(rows) + f"\n\n*timings: {timing}*")


def answer_message(answer) -> str:
    """The assistant's chat message: escaped, citations linked; a decline and related material are marked."""
    if answer.declined:
        return "🚫 **不在题库范围内 · Not in the question bank**\n\n" + escape_html(answer.text)
    text = link_citations(escape_html(answer.text))
    if answer.outcome == "related":
        text = f"📎 **{RELATED_HEADING}**\n\n" + text
    if answer.partial:
        text += "\n\n*（回答中断，以上为已收到的部分）*"
    return text


def decline_box_markdown(answer) -> str:
    """The decline box: nearby questions to click, or the bank's categories for a clearly off-topic question."""
    if answer.categories:
        return ("🚫 **题库里没有能回答这个问题的内容。** 这个问题不在题库范围内；题库涵盖这些类别"
                "（Outside the bank's scope; it covers these categories）：\n"
                + "\n".join(f"- {escape_html(c)}" for c in answer.categories))
    return "🚫 **题库里没有能回答这个问题的内容。** 试试下面这些题库问题（点击即问）："


def related_box_markdown(answer) -> str:
    """The related-material box, shown above the cards of the closest sections."""
    return (f"📎 **{RELATED_HEADING}**\n\n下面的卡片是题库中最接近的内容，它们回答的是别的问题，不是这个问题的答案。"
            "（The cards below are the closest sections; they answer other questions.）")


def notices_markdown(notices) -> str:
    return "\n".join(f"⚠️ {escape_html(n)}" for n in notices)


VERDICT_LABELS = {  # marks that Noto CJK draws (emoji checkmarks render as empty boxes on Debian chromium)
    "covered": "✓ 答到 covered", "partial": "½ 部分 partial", "contradicted": "✗ 答错 wrong",
    "missing": "○ 未答 missing",
}
MAX_POINT_ROWS = 20  # verdict selectors on the page; a reference with more points shows the rest read-only


def judge_line(grade) -> str:
    """What judged this grade, said plainly."""
    if grade.judge.startswith("llm:"):
        return (f"**判分 Judged by:** LLM `{escape_html(grade.judge[4:])}` — 请逐条确认或修改后保存。"
                " Confirm or change each verdict, then save.")
    return ("**判分 Judged by:** 自动核对参考答案的要点（离线，不是 LLM，可能看错）— 请逐条确认或修改后保存。"
            " An automatic check of the reference's points (offline): confirm or change each verdict, then save.")


def highlighted_answer(grade) -> str:
    """The graded answer, escaped, with each verdict's evidence marked (class ``ev-<verdict>``)."""
    text = grade.answer
    spans: list[tuple[int, int, str]] = []
    for v in grade.points:
        if not v.evidence:
            continue
        start = text.find(v.evidence)
        if start < 0:
            start = text.lower().find(v.evidence.lower())
        if start < 0:
            continue
        end = start + len(v.evidence)
        if all(end <= a or start >= b for a, b, _ in spans):  # the first verdict on a span marks it
            spans.append((start, end, v.verdict))
    out, pos = [], 0
    for start, end, verdict in sorted(spans):
        out.append(_plain(text[pos:start]))
        out.append(f'<mark class="ev-{verdict}">{_plain(text[start:end])}</mark>')
        pos = end
    out.append(_plain(text[pos:]))
    return "".join(out)


_PLAIN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "*": "&#42;", "_": "&#95;", "`": "&#96;",
                        "#": "&#35;", "[": "&#91;", "]": "&#93;", "\\": "&#92;"})


def _plain(text: str) -> str:
    """Text that Markdown shows as it is: HTML and Markdown characters as entities, in one pass."""
    return text.translate(_PLAIN)


def grade_markdown(grade, section, confirmed: bool = False) -> str:
    """Score, what judged, the answer with its evidence marked, a verdict per point, notes, the reference."""
    state = "已确认 confirmed" if confirmed else "待确认 to confirm"
    rows = []
    for i, v in enumerate(grade.points, start=1):
        evidence = f" — «{_plain(v.evidence)}»" if v.evidence else ""
        why = f" <small>({_plain(v.why)})</small>" if v.why else ""  # the cue or claim the verdict rests on
        rows.append(f"{i}. **{VERDICT_LABELS[v.verdict]}** · {_plain(v.point)}{evidence}{why}")
    parts = [f"### 得分 Score: {grade.score:.0f} / 100 ({state})", judge_line(grade),
             f"**覆盖 Covered {len(grade.covered)} · 答错 Wrong {len(grade.contradicted)} · "
             f"遗漏 Missed {len(grade.missed) - len(grade.contradicted)}**",
             "\n".join(rows) or "（无要点）"]
    if grade.answer:
        parts.append(f'**你的回答 Your answer**（依据已标出 evidence marked）\n\n<div class="graded-answer">'
                     f"{highlighted_answer(grade)}</div>")
    if grade.feedback:
        parts.append(f"**点评 Feedback**\n\n{escape_html(grade.feedback)}")
    if grade.notes:
        parts.append(notices_markdown(grade.notes))
    parts.append("### 参考答案 Reference\n\n" + card_markdown(section))
    return "\n\n".join(parts)


def contradicted_count(grade) -> int:
    """Key points the answer contradicted (0 when the grade does not say)."""
    value = getattr(grade, "contradicted", 0) or 0
    return value if isinstance(value, int) else len(value)


def record_grade(store, person: str, section, score: float, contradicted: int) -> str:
    """Save one confirmed grade for ``person``; the line to show (when it is next due, or why it was not saved)."""
    from coach.state import ProgressError

    try:
        entry = store.record(person, section, score, contradicted)
    except ProgressError as err:
        return f"⚠️ {escape_html(str(err))}"
    return f"*已记录 Saved for {escape_html(person)} · next review {due_phrase(entry.due)}*"


def due_phrase(due: float, now: float | None = None) -> str:
    """``due_phrase(now + 600, now) -> "in 10 min"``, hours below two days, else days."""
    import time as _time

    left = due - (_time.time() if now is None else now)
    if left < 30:
        return "now"
    if left < 3600:
        return f"in {max(1.0, left / 60):.0f} min"
    if left < 2 * 86_400:
        return f"in {left / 3600:.0f} h"
    return f"in {left / 86_400:.0f} days"


def answer_payload(answer) -> dict:
    """What the /ask API returns."""
    return {"question": answer.question, "text": answer.text, "outcome": answer.outcome, "declined": answer.declined,
            "coverage": answer.coverage, "categories": list(answer.categories),
            "citations": [c.id for c in answer.citations], "suggestions": list(answer.suggestions),
            "notices": list(answer.notices), "mode": answer.mode, "rerank": answer.rerank_state,
            "rewritten_query": answer.rewritten_query, "hits": [h.id for h in answer.hits],
            "timings_ms": answer.timings_ms}


PERSON_DEFAULT = "local"
_NAME_OK = re.compile(r"^[\w .@+-]{1,60}$")


def resolve_person(login: str | None, saved: str | None) -> str:
    """``resolve_person("ana", "bo") -> "ana"`` (a login wins), ``(None, "bo") -> "bo"``, ``(None, "") -> "local"``."""
    if login:
        return str(login)
    name = clean_name(saved or "")
    return name or PERSON_DEFAULT


def clean_name(raw: str) -> str:
    """A typed name, trimmed; "" if it is empty or has characters other than letters, digits, `` .@+-_``."""
    name = normalize(raw or "").strip() if isinstance(raw, str) else ""
    return name if _NAME_OK.match(name) and not name.startswith("slack:") else ""


def person_markdown(person: str, login: bool) -> str:
    how = "登录 login" if login else ("默认 default: enter your name below" if person == PERSON_DEFAULT
                                      else "本浏览器记住的名字 name remembered by this browser")
    return f"👤 练习者 Practising as: **{escape_html(person)}** · *{how}*"


def load_auth(path: str) -> list[tuple[str, str]]:
    """``user:password`` lines (``#`` comments) -> Gradio's ``auth`` list; ValueError naming the file and line."""
    pairs = []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as err:
        raise ValueError(f"COACH_AUTH_FILE={path!r} cannot be read ({err.strerror or err})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.strip().partition(":")
        if not sep or not clean_name(user) or not password:
            raise ValueError(f"COACH_AUTH_FILE={path!r} line {n} is not 'user:password' (user: letters, digits, "
                             "' .@+-_')")
        pairs.append((user, password))
    if not pairs:
        raise ValueError(f"COACH_AUTH_FILE={path!r} has no 'user:password' line")
    return pairs


def due_markdown(summary, sections: dict) -> str:
    """What is due today for this person (coach.state.report.Summary), weakest questions listed."""
    now, later = list(summary.due_now), list(summary.due_today)
    if not now and not later:
        nxt = next((n for _, n in summary.forecast if n), 0)
        return "**今天没有要复习的题 Nothing due today.**" + (" Upcoming reviews are in the chart below." if nxt else "")
    title = lambda sid: escape_html(sections[sid].title) if sid in sections else ""  # noqa: E731
    lines = [f"**今天要复习 Due today: {len(now) + len(later)}** ({len(now)} now, {len(later)} later today)"]
    lines += [f"- [{e.section_id}] {title(e.section_id)} · last {e.last_score:.0f}" for e in (now + later)[:10]]
    return "\n".join(lines)


def status_line(coach, n_sections: int, progress_note: str) -> str:
    """The page's one line for users: mode, reranker, bank size, whether progress is saved (paths and timings
    are in the log and behind "show retrieval details")."""
    mode = f"LLM {escape_html(coach.mode)}" if coach.llm else "extractive (quotes the bank; no LLM configured)"
    rerank = coach.rerank_state.split(" (", 1)[0]  # "off (no reranker configured; set ...)" -> "off"
    return " · ".join([f"**mode:** {mode}", f"**rerank:** {escape_html(rerank)}",
                       f"**bank:** {n_sections} sections", escape_html(progress_note)])


def setup_markdown(status: list[str], store_path: str) -> str:
    """What the start-up did (index loaded or rebuilt and why, rerank, decline, answers, grading), for the details
    panel."""
    lines = [*status, f"progress database: {store_path}" if store_path else ""]
    return "**setup**\n\n" + "\n".join(f"- {escape_html(line)}" for line in lines if line)


# -- the app -----------------------------------------------------------------------------------------------
@dataclass
class AppParts:
    """What the handlers share (read-only after start-up, except the lazily built drill matcher)."""

    coach: object
    settings: Settings
    sections: dict
    grader: object
    store: object  # coach.state.ProgressStore (one that raises ProgressError when progress cannot be saved)
    store_error: str
    drills: object | None = None

    def drill_matcher(self):
        if self.drills is None:
            from coach.practice import DrillMatcher

            self.drills = DrillMatcher(self.coach.retriever.embedder, list(self.sections.values()))
        return self.drills


def build_parts(settings: Settings) -> tuple[AppParts, list[str]]:
    from coach.grader import Grader
    from coach.pipeline import build_coach
    from coach.state import open_progress

    coach, status = build_coach(settings)
    store, store_error = open_progress(settings.progress_url, settings.data_dir)
    grader = Grader.for_corpus(settings.corpus_dir, coach.retriever.embedder, llm=coach.llm)
    return AppParts(coach, settings, coach.retriever.index.sections, grader, store, store_error), \
        [*status, grader.second_look_state]


def build_ui(parts: AppParts, status: list[str]):
    import gradio as gr

    from coach.answering.answer import StreamRestart
    from coach.grader import confirm
    from coach.practice import pick_question
    from coach.state import ProgressError

    coach, settings, sections = parts.coach, parts.settings, parts.sections
    progress_note = parts.store_error or "progress saved"  # the error names the setting or file to fix
    setup_md = setup_markdown(status + [parts.store_error], parts.store.where)
    letters = sorted({s.category for s in sections.values() if s.category_letter and s.category_letter != "J"})
    n_sugg = 3
    hide = gr.update(visible=False)

    def ui_ask(question, history, turns, k, show_details):
        """UI chat: streams the answer; outputs chat, turns, cards, notice, decline box, suggestions x3, details, box,
        related box."""
        text, notices = prepare_question(question, settings.max_query_chars)
        history, turns = list(history or []), list(turns or [])
        if text is None:
            yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), question,
                   hide)
            return
        history.append({"role": "user", "content": escape_html(text)})
        history.append({"role": "assistant", "content": "…"})
        yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), "", hide)
        shown = ""
        try:
            for piece in coach.ask_stream(text, turns, k=int(k)):
                if isinstance(piece, str):
                    shown = "" if isinstance(piece, StreamRestart) else shown + piece  # RESTART: text withdrawn
                    history[-1] = {"role": "assistant", "content": link_citations(escape_html(shown))}
                    yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg,
                           gr.update(), "", hide)
                else:
                    answer = piece
        except QueryError as err:
            history[-1] = {"role": "assistant", "content": f"⚠️ {escape_html(str(err))}"}
            yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), "", hide)
            return
        history[-1] = {"role": "assistant", "content": answer_message(answer)}
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": answer.text}]
        notices += list(answer.notices)
        sugg = [gr.update(visible=i < len(answer.suggestions) and answer.declined,
                          value=answer.suggestions[i] if i < len(answer.suggestions) else "") for i in range(n_sugg)]
        decline = gr.update(visible=answer.declined, value=decline_box_markdown(answer) if answer.declined else "")
        related = gr.update(visible=answer.outcome == "related",
                            value=related_box_markdown(answer) if answer.outcome == "related" else "")
        details = gr.update(value=details_markdown(answer), visible=bool(show_details))
        yield (history, turns, cards_markdown(answer, sections), notices_markdown(notices), decline, *sugg, details, "",
               related)

    def ask_api(question, k, turns):
        """API: one whole answer as a dict; this client session's history lives in ``turns``."""
        text, notices = prepare_question(question, settings.max_query_chars)
        turns = list(turns or [])
        if text is None:
            return {"error": notices[0], "declined": False, "text": "", "citations": []}, turns
        try:
            answer = coach.ask(text, turns, k=int(k))
        except QueryError as err:
            return {"error": str(err), "declined": False, "text": "", "citations": []}, turns
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": answer.text}]
        payload = answer_payload(answer)
        payload["notices"] = notices + payload["notices"]
        return payload, turns

    def ui_new_conversation():
        return [], [], "", "", hide, *[hide] * n_sugg, gr.update(value=""), hide

    def new_conversation_api():
        return []

    # -- practice ------------------------------------------------------------------------------------------
    def progress_rows(person):
        try:
            stats = parts.store.category_stats(person)
        except ProgressError as err:
            return [[str(err), "", "", ""]]
        return [[s.category, s.attempts, round(s.average, 1), round(s.last, 1)] for s in stats]

    def on_load(saved, request: gr.Request):
        login = getattr(request, "username", None) if request is not None else None
        person = resolve_person(login, saved)
        return (person, person_markdown(person, bool(login)), gr.update(visible=not login), progress_rows(person))

    def progress_panel(person):
        """Due today and the two charts for this person (the table is progress_rows)."""
        import time as _time

        from coach.progress_charts import forecast_figure, mastery_figure
        from coach.state.report import due_forecast, mastery_series, summary

        now = _time.time()
        try:
            reviews, schedule = parts.store.reviews(person), parts.store.schedule(person)
        except ProgressError as err:
            return f"⚠️ {escape_html(str(err))}", None, None
        s = summary([], schedule, now)
        return (due_markdown(s, sections), mastery_figure(*mastery_series(reviews, 30, now)),
                forecast_figure(due_forecast(schedule, 14, now)))

    def export_anki(person):
        import tempfile

        from coach.anki import export_weak_deck

        safe = re.sub(r"[^\w.-]+", "_", person)[:60] or "person"
        path = Path(tempfile.mkdtemp(prefix="coach-anki-")) / f"interview-coach-{safe}-weak.apkg"
        try:
            written = export_weak_deck(parts.store, person, sections, path)
        except ProgressError as err:
            return gr.update(value=None, visible=False), f"⚠️ {escape_html(str(err))}"
        if written is None:
            return (gr.update(value=None, visible=False),
                    "没有薄弱的题（最近得分都 ≥ 80）。No weak questions to export: every last score is 80 or more.")
        n = len(parts.store.weak(person))
        return gr.update(value=str(written), visible=True), f"{n} 道薄弱题已导出 · {n} weak question(s) exported for {escape_html(person)}."

    def set_name(raw, request: gr.Request):
        login = getattr(request, "username", None) if request is not None else None
        if login:  # with logins, the login is the person
            return login, gr.update(), person_markdown(login, True), progress_rows(login), ""
        name = clean_name(raw)
        if not name:
            person = PERSON_DEFAULT if not normalize(raw or "") else None
            if person is None:
                return (gr.update(), gr.update(), gr.update(),  gr.update(),
                        "⚠️ 名字只能包含字母、数字和 ` .@+-_`（最多 60 个字符）。Use letters, digits and ` .@+-_`.")
            name = PERSON_DEFAULT
        return name, "" if name == PERSON_DEFAULT else name, person_markdown(name, False), progress_rows(name), ""

    def practice_api(section_id, answer_text, name, request: gr.Request):
        person = resolve_person(getattr(request, "username", None) if request is not None else None, name)
        section = sections.get(str(section_id or ""))
        if section is None or not normalize(answer_text or ""):
            return {"person": person, "error": f"unknown section {section_id!r}" if section is None else "empty answer"}
        result = parts.grader.grade(section, answer_text)
        note = record_grade(parts.store, person, section, result.score, contradicted_count(result))
        return {"person": person, "section": section.id, "score": result.score, "saved": not note.startswith("⚠️"),
                "note": note}

    def progress_api(name, request: gr.Request):
        person = resolve_person(getattr(request, "username", None) if request is not None else None, name)
        try:
            stats, due = parts.store.category_stats(person), parts.store.due(person)
        except ProgressError as err:
            return {"person": person, "error": str(err)}
        return {"person": person, "attempts": sum(c.attempts for c in stats), "due": due,
                "categories": [{"category": c.category, "attempts": c.attempts, "average": c.average}
                               for c in stats]}

    for fn in (on_load, set_name, practice_api, progress_api):  # the real class (this module's annotations are strings): Gradio injects it
        fn.__annotations__["request"] = gr.Request

    def pick(category, current, person):
        due: list[str] = []
        note = ""
        try:
            due = parts.store.due(person)
        except ProgressError as err:
            note = f"\n\n⚠️ {escape_html(str(err))}"
        letter = None if not category or category == "随机 Random" else category.split(".", 1)[0]
        section = pick_question(list(sections.values()), letter, random.Random(), due=due,
                                exclude=[current] if current else [])
        return (section.id, _question_md(section) + note, "", "", gr.update(visible=False), None,
                *[gr.update(visible=False, value=None)] * MAX_POINT_ROWS, gr.update(visible=False))

    def _question_md(section):
        return f"### [{section.id}] {escape_html(section.title)}\n*{escape_html(section.category)}*"

    def grade(current, answer_text):
        """Grade (not saved yet): the result, the grade kept for saving, one verdict selector per point."""
        hidden = [gr.update(visible=False, value=None)] * MAX_POINT_ROWS
        if not current:
            return ("⚠️ 先点「出题」拿到一道题。(Pick a question first.)", None, *hidden, gr.update(visible=False),
                    gr.update(visible=False))
        section = sections[current]
        result = parts.grader.grade(section, answer_text or "")
        md = grade_markdown(result, section)
        rows = [gr.update(visible=i < len(result.points) and bool(result.answer),
                          value=result.points[i].verdict if i < len(result.points) else None,
                          label=f"{i + 1}. {result.points[i].point}"[:120] if i < len(result.points) else "")
                for i in range(MAX_POINT_ROWS)]
        drill = parts.drill_matcher().for_section(section)
        follow = gr.update(visible=drill is not None, value=f"追问练习 Follow-up: {drill.title}" if drill else "")
        return md, result, *rows, gr.update(visible=bool(result.answer)), follow

    def save(current, result, person, *verdicts):
        """Record the candidate's confirmed verdicts, for this person: the score of those, not of the judge's."""
        if result is None or not current:
            return "⚠️ 先评分再保存。(Grade first, then save.)", result, gr.update(), progress_rows(person)
        chosen = [v or old.verdict for v, old in zip(verdicts, result.points)]
        chosen += [v.verdict for v in result.points[len(chosen):]]
        confirmed = confirm(result, chosen)
        md = grade_markdown(confirmed, sections[current], confirmed=True)
        saved = record_grade(parts.store, person, sections[current], confirmed.score, contradicted_count(confirmed))
        return md + "\n\n" + saved, None, gr.update(visible=False), progress_rows(person)

    def follow_up(current):
        drill = parts.drill_matcher().for_section(sections[current]) if current else None
        if drill is None:
            return (current, gr.update(), gr.update(), gr.update(), gr.update(visible=False), gr.update(),
                    *[gr.update()] * MAX_POINT_ROWS, gr.update())
        return (drill.id, _question_md(drill), "", "", gr.update(visible=False), None,
                *[gr.update(visible=False, value=None)] * MAX_POINT_ROWS, gr.update(visible=False))

    with gr.Blocks(title="Interview Coach") as demo:
        gr.Markdown("# Interview Coach · LLM 面试教练")
        gr.Markdown(status_line(coach, len(sections), progress_note), elem_id="status")
        turns = gr.State([])  # this browser session's conversation (raw texts, for Coach.ask_stream)
        current = gr.State("")  # the practice question being answered
        person = gr.State(PERSON_DEFAULT)  # who is practising (resolved on load: login, remembered name, "local")
        saved_name = gr.BrowserState("", storage_key="interview-coach-person",
                                     secret="interview-coach-person-name")  # only a display name: no secret kept
        with gr.Tabs():
            with gr.Tab("Chat 问答", elem_id="chat-tab"):
                chat = gr.Chatbot(elem_id="chat", height=460, sanitize_html=True, render_markdown=True,
                                  label="对话 Conversation")
                notice = gr.Markdown("", elem_id="notice", elem_classes=["notice-box"])
                decline_box = gr.Markdown("", elem_id="decline-box", elem_classes=["decline-box"], visible=False)
                related_box = gr.Markdown("", elem_id="related-box", elem_classes=["related-box"], visible=False)
                with gr.Row():
                    sugg_buttons = [gr.Button("", visible=False, elem_id=f"suggestion-{i}", size="sm")
                                    for i in range(n_sugg)]
                with gr.Row():
                    question = gr.Textbox(placeholder="问一道面试题，例如：KV Cache 的原理是什么？", show_label=False,
                                          elem_id="question", scale=6, max_lines=6)
                    send = gr.Button("提问 Ask", variant="primary", elem_id="ask", scale=1)
                    reset = gr.Button("新对话 New conversation", elem_id="new-conversation", scale=1)
                with gr.Row():
                    k = gr.Slider(1, 10, value=settings.top_k, step=1, label="top-k", elem_id="top-k")
                    show_details = gr.Checkbox(False, label="显示检索细节 Show retrieval details",
                                               elem_id="show-details")
                details = gr.Markdown("", elem_id="details", visible=False)
                setup = gr.Markdown(setup_md, elem_id="setup", visible=False)
                cards = gr.Markdown("", elem_id="cards", elem_classes=["cite-cards"])
                api_out = gr.JSON(visible=False)
                api_question = gr.Textbox(visible=False)
                api_ask, api_reset = gr.Button(visible=False), gr.Button(visible=False)
            with gr.Tab("Practice 练习", elem_id="practice-tab"):
                # empty until the page's load event says who it is (the login, the remembered name, or "local"):
                # showing "local" before that invited a name typed before the load, which the load then overwrote
                who = gr.Markdown("", elem_id="practice-person")
                with gr.Row(visible=True) as name_row:
                    name_box = gr.Textbox(placeholder="你的名字 Your name (remembered by this browser)",
                                          show_label=False, elem_id="practice-name", scale=4, max_lines=1)
                    name_btn = gr.Button("就是我 That's me", elem_id="practice-name-set", scale=1)
                name_note = gr.Markdown("", elem_id="practice-name-note")
                with gr.Row():
                    category = gr.Dropdown(["随机 Random", *letters], value="随机 Random", label="类别 Category",
                                           elem_id="practice-category")
                    pick_btn = gr.Button("出题 New question", variant="primary", elem_id="practice-pick")
                q_md = gr.Markdown("点「出题」开始练习。", elem_id="practice-question")
                answer_box = gr.Textbox(lines=5, label="你的回答 Your answer", elem_id="practice-answer")
                grade_btn = gr.Button("评分 Grade", variant="primary", elem_id="practice-grade")
                result = gr.Markdown("", elem_id="practice-result", elem_classes=["grade-box"])
                graded = gr.State(None)  # the Grade waiting for the candidate's confirmation
                verdict_rows = [gr.Radio([(label, v) for v, label in VERDICT_LABELS.items()], visible=False,
                                         elem_id=f"practice-verdict-{i}", elem_classes=["verdict-row"])
                                for i in range(MAX_POINT_ROWS)]
                save_btn = gr.Button("确认并保存 Confirm & save", variant="primary", visible=False,
                                     elem_id="practice-save")
                follow_btn = gr.Button("", visible=False, elem_id="practice-follow-up")
                gr.Markdown("### 进度 Progress")
                progress = gr.Dataframe([], headers=["category", "attempts", "average", "last"],
                                        interactive=False, elem_id="progress")
                due_md = gr.Markdown("", elem_id="progress-due")
                with gr.Row():
                    mastery_plot = gr.Plot(label="掌握度 Mastery over time", elem_id="progress-mastery")
                    forecast_plot = gr.Plot(label="待复习 Due in the coming days", elem_id="progress-forecast")
                with gr.Row():
                    export_btn = gr.Button("导出薄弱题 Anki 卡组 Export weak questions (Anki)", elem_id="progress-export")
                    export_file = gr.File(label="Anki deck (.apkg)", visible=False, interactive=False,
                                          elem_id="progress-export-file")
                export_note = gr.Markdown("", elem_id="progress-export-note")

        outputs = [chat, turns, cards, notice, decline_box, *sugg_buttons, details, question, related_box]
        send.click(ui_ask, [question, chat, turns, k, show_details], outputs, api_visibility="private")
        question.submit(ui_ask, [question, chat, turns, k, show_details], outputs, api_visibility="private")
        for b in sugg_buttons:
            b.click(ui_ask, [b, chat, turns, k, show_details], outputs, api_visibility="private")
        reset.click(ui_new_conversation, None, [chat, turns, cards, notice, decline_box, *sugg_buttons, details,
                                                related_box], api_visibility="private")
        show_details.change(lambda on: (gr.update(visible=bool(on)),) * 2, show_details, [details, setup],
                            api_visibility="private")
        # gradio_client endpoints; several sessions are served at once (the coach is thread-safe)
        api_ask.click(ask_api, [api_question, k, turns], [api_out, turns], api_name="ask", concurrency_limit=8)
        api_reset.click(new_conversation_api, None, [turns], api_name="new_conversation")
        api_section, api_name = gr.Textbox(visible=False), gr.Textbox(visible=False)
        api_practice, api_progress = gr.Button(visible=False), gr.Button(visible=False)
        api_practice.click(practice_api, [api_section, api_question, api_name], api_out, api_name="practice_grade",
                           concurrency_limit=8)
        api_progress.click(progress_api, api_name, api_out, api_name="my_progress", concurrency_limit=8)
        round_outputs = [current, q_md, answer_box, result, follow_btn, graded, *verdict_rows, save_btn]
        pick_btn.click(pick, [category, current, person], round_outputs, api_visibility="private")
        panel = [due_md, mastery_plot, forecast_plot]
        grade_btn.click(grade, [current, answer_box], [result, graded, *verdict_rows, save_btn, follow_btn],
                        api_visibility="private")
        save_btn.click(save, [current, graded, person, *verdict_rows], [result, graded, save_btn, progress],
                       api_visibility="private").then(progress_panel, person, panel, api_visibility="private")
        demo.load(on_load, [saved_name], [person, who, name_row, progress], api_visibility="private").then(
            progress_panel, person, panel, api_visibility="private")
        for trigger in (name_btn.click, name_box.submit):
            trigger(set_name, [name_box], [person, saved_name, who, progress, name_note],
                    api_visibility="private").then(progress_panel, person, panel, api_visibility="private")
        export_btn.click(export_anki, person, [export_file, export_note], api_visibility="private")
        follow_btn.click(follow_up, current, round_outputs, api_visibility="private")
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Interview Coach web app")
    ap.add_argument("--host", default=os.environ.get("COACH_HOST", "127.0.0.1"), help="default 127.0.0.1 (COACH_HOST)")
    ap.add_argument("--port", type=int, default=None, help="default 7860 (COACH_PORT)")
    args = ap.parse_args(argv)
    configure_logging(logging.INFO)
    try:
        port = args.port if args.port is not None else int(os.environ.get("COACH_PORT", "7860"))
    except ValueError:
        print(f"error: COACH_PORT={os.environ['COACH_PORT']!r} is not a port number", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        auth = load_auth(settings.auth_file) if settings.auth_file else None
        parts, status = build_parts(settings)
    except Exception as err:  # setup problems: say what, no traceback
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    for line in status:
        print(line, flush=True)
    if parts.store_error:  # the app still starts and answers; say which setting is wrong
        print(f"warning: {parts.store_error}", file=sys.stderr, flush=True)
    demo = build_ui(parts, status)
    import gradio as gr

    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=port, css=CSS, theme=gr.themes.Soft(), show_error=True,
                footer_links=["api"], auth=auth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
