"""The Gradio app: chat with citation cards, and practice with a point-by-point grade.

    python app.py [--host 127.0.0.1] [--port 7860]      (or COACH_HOST / COACH_PORT; other COACH_* as usual)

Builds the index if it is missing (through coach.pipeline.build_coach), then serves.
This file only wires the UI: answering is coach.answer.Coach, grading coach.grader,
question choice, follow-up drills and progress coach.practice.  The functions above
``build_ui`` turn their records into Markdown and are importable without gradio.

Named API endpoints (for gradio_client, e.g. bench/app_load.py):
  /ask(question, k)   -> dict (text, citations, declined, suggestions, notices, mode, ...),
                         with this client session's own history kept server-side
  /new_conversation() -> clears that history
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
from dataclasses import dataclass

from coach.settings import Settings
from coach.text import QueryError, normalize

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the only network here is 127.0.0.1
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PASTE_LIMIT = 20_000
EMPTY_HINT = "请输入一个问题，例如「KV Cache 的原理是什么？」（Type a question first.）"
_CITE = re.compile(r"\[((?:[\w-]+:)?[QIJ]\d+)\]")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)

CSS = """
.decline-box { border: 2px solid #d97706; background: #fffbeb; border-radius: 8px; padding: 8px 12px; }
.decline-box * { color: #92400e !important; }
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
    return "### 引用 Citations\n\n" + "\n\n---\n\n".join(cards)


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
    """The assistant's chat message: escaped, citations linked; a decline is marked as one."""
    if answer.declined:
        return "🚫 **不在题库范围内 · Not in the question bank**\n\n" + escape_html(answer.text)
    text = link_citations(escape_html(answer.text))
    if answer.partial:
        text += "\n\n*（回答中断，以上为已收到的部分）*"
    return text


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
        rows.append(f"{i}. **{VERDICT_LABELS[v.verdict]}** · {_plain(v.point)}{evidence}")
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


def record_progress(store, section, grade) -> str:
    """Store the confirmed grade's score in progress; the line to show. (The one place progress is written.)"""
    from coach.practice import ProgressError

    if store is None:
        return ""
    try:
        entry = store.record(section, grade.score)
    except ProgressError as err:
        return f"⚠️ {escape_html(str(err))}"
    return f"*已保存 Saved · Leitner box {entry.box}*"


def answer_payload(answer) -> dict:
    """What the /ask API returns."""
    return {"question": answer.question, "text": answer.text, "declined": answer.declined,
            "citations": [c.id for c in answer.citations], "suggestions": list(answer.suggestions),
            "notices": list(answer.notices), "mode": answer.mode, "rerank": answer.rerank_state,
            "rewritten_query": answer.rewritten_query, "hits": [h.id for h in answer.hits],
            "timings_ms": answer.timings_ms}


def status_line(coach, status: list[str], progress_note: str) -> str:
    mode = f"LLM {coach.mode}" if coach.llm else "extractive (quotes the bank; no LLM configured)"
    index = next((s for s in status if s.startswith("index")), "")
    parts = [f"**mode:** {mode}", f"**rerank:** {coach.rerank_state}", index, progress_note]
    return " · ".join(escape_html(p) if i > 1 else p for i, p in enumerate(parts) if p)


# -- the app -----------------------------------------------------------------------------------------------
@dataclass
class AppParts:
    """What the handlers share (read-only after start-up, except the lazily built drill matcher)."""

    coach: object
    settings: Settings
    sections: dict
    grader: object
    store: object | None  # ProgressStore, or None when the database cannot be used
    store_error: str
    drills: object | None = None

    def drill_matcher(self):
        if self.drills is None:
            from coach.practice import DrillMatcher

            self.drills = DrillMatcher(self.coach.retriever.embedder, list(self.sections.values()))
        return self.drills


def build_parts(settings: Settings) -> tuple[AppParts, list[str]]:
    from coach.glossary import load_glossary
    from coach.grader import Grader
    from coach.pipeline import build_coach
    from coach.practice import ProgressError, ProgressStore

    coach, status = build_coach(settings)
    store, store_error = None, ""
    try:
        store = ProgressStore.in_dir(settings.data_dir)
    except (ProgressError, OSError) as err:
        store_error = f"progress not saved: {err}"
    grader = Grader(coach.retriever.embedder, llm=coach.llm, glossary=load_glossary(settings.corpus_dir).groups)
    return AppParts(coach, settings, coach.retriever.index.sections, grader, store, store_error), status


def build_ui(parts: AppParts, status: list[str]):
    import gradio as gr

    from coach.grader import confirm
    from coach.practice import ProgressError, pick_question

    coach, settings, sections = parts.coach, parts.settings, parts.sections
    progress_note = parts.store_error or (f"progress: {parts.store.path}" if parts.store else "")
    letters = sorted({s.category for s in sections.values() if s.category_letter and s.category_letter != "J"})
    n_sugg = 3
    hide = gr.update(visible=False)

    def ui_ask(question, history, turns, k, show_details):
        """UI chat: streams the answer; outputs chat, turns, cards, notice, decline box, suggestions x3, details, box."""
        text, notices = prepare_question(question, settings.max_query_chars)
        history, turns = list(history or []), list(turns or [])
        if text is None:
            yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), question)
            return
        history.append({"role": "user", "content": escape_html(text)})
        history.append({"role": "assistant", "content": "…"})
        yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), "")
        shown = ""
        try:
            for piece in coach.ask_stream(text, turns, k=int(k)):
                if isinstance(piece, str):
                    shown += piece
                    history[-1] = {"role": "assistant", "content": link_citations(escape_html(shown))}
                    yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg,
                           gr.update(), "")
                else:
                    answer = piece
        except QueryError as err:
            history[-1] = {"role": "assistant", "content": f"⚠️ {escape_html(str(err))}"}
            yield (history, turns, gr.update(), notices_markdown(notices), hide, *[hide] * n_sugg, gr.update(), "")
            return
        history[-1] = {"role": "assistant", "content": answer_message(answer)}
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": answer.text}]
        notices += list(answer.notices)
        sugg = [gr.update(visible=i < len(answer.suggestions) and answer.declined,
                          value=answer.suggestions[i] if i < len(answer.suggestions) else "") for i in range(n_sugg)]
        decline = gr.update(visible=answer.declined, value=(
            "🚫 **题库里没有能回答这个问题的内容。** 试试下面这些题库问题（点击即问）：" if answer.declined else ""))
        details = gr.update(value=details_markdown(answer), visible=bool(show_details))
        yield (history, turns, cards_markdown(answer, sections), notices_markdown(notices), decline, *sugg, details, "")

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
        return [], [], "", "", hide, *[hide] * n_sugg, gr.update(value="")

    def new_conversation_api():
        return []

    # -- practice ------------------------------------------------------------------------------------------
    def progress_rows():
        if parts.store is None:
            return [[parts.store_error, "", "", ""]]
        try:
            stats = parts.store.category_stats()
        except ProgressError as err:
            return [[str(err), "", "", ""]]
        return [[s.category, s.attempts, round(s.average, 1), round(s.last, 1)] for s in stats]

    def pick(category, current):
        due: list[str] = []
        note = ""
        if parts.store is not None:
            try:
                due = parts.store.due()
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

    def save(current, result, *verdicts):
        """Record the candidate's confirmed verdicts: the score of those, not of the judge's."""
        if result is None or not current:
            return "⚠️ 先评分再保存。(Grade first, then save.)", result, gr.update(), progress_rows()
        chosen = [v or old.verdict for v, old in zip(verdicts, result.points)]
        chosen += [v.verdict for v in result.points[len(chosen):]]
        confirmed = confirm(result, chosen)
        md = grade_markdown(confirmed, sections[current], confirmed=True)
        saved = record_progress(parts.store, sections[current], confirmed)
        return md + ("\n\n" + saved if saved else ""), None, gr.update(visible=False), progress_rows()

    def follow_up(current):
        drill = parts.drill_matcher().for_section(sections[current]) if current else None
        if drill is None:
            return (current, gr.update(), gr.update(), gr.update(), gr.update(visible=False), gr.update(),
                    *[gr.update()] * MAX_POINT_ROWS, gr.update())
        return (drill.id, _question_md(drill), "", "", gr.update(visible=False), None,
                *[gr.update(visible=False, value=None)] * MAX_POINT_ROWS, gr.update(visible=False))

    with gr.Blocks(title="Interview Coach") as demo:
        gr.Markdown("# Interview Coach · LLM 面试教练")
        gr.Markdown(status_line(coach, status, progress_note), elem_id="status")
        turns = gr.State([])  # this browser session's conversation (raw texts, for Coach.ask_stream)
        current = gr.State("")  # the practice question being answered
        with gr.Tabs():
            with gr.Tab("Chat 问答", elem_id="chat-tab"):
                chat = gr.Chatbot(elem_id="chat", height=460, sanitize_html=True, render_markdown=True,
                                  label="对话 Conversation")
                notice = gr.Markdown("", elem_id="notice", elem_classes=["notice-box"])
                decline_box = gr.Markdown("", elem_id="decline-box", elem_classes=["decline-box"], visible=False)
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
                cards = gr.Markdown("", elem_id="cards", elem_classes=["cite-cards"])
                api_out = gr.JSON(visible=False)
                api_question = gr.Textbox(visible=False)
                api_ask, api_reset = gr.Button(visible=False), gr.Button(visible=False)
            with gr.Tab("Practice 练习", elem_id="practice-tab"):
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
                progress = gr.Dataframe(progress_rows(), headers=["category", "attempts", "average", "last"],
                                        interactive=False, elem_id="progress")

        outputs = [chat, turns, cards, notice, decline_box, *sugg_buttons, details, question]
        send.click(ui_ask, [question, chat, turns, k, show_details], outputs, api_visibility="private")
        question.submit(ui_ask, [question, chat, turns, k, show_details], outputs, api_visibility="private")
        for b in sugg_buttons:
            b.click(ui_ask, [b, chat, turns, k, show_details], outputs, api_visibility="private")
        reset.click(ui_new_conversation, None, [chat, turns, cards, notice, decline_box, *sugg_buttons, details],
                    api_visibility="private")
        show_details.change(lambda on: gr.update(visible=bool(on)), show_details, details, api_visibility="private")
        # gradio_client endpoints; several sessions are served at once (the coach is thread-safe)
        api_ask.click(ask_api, [api_question, k, turns], [api_out, turns], api_name="ask", concurrency_limit=8)
        api_reset.click(new_conversation_api, None, [turns], api_name="new_conversation")
        round_outputs = [current, q_md, answer_box, result, follow_btn, graded, *verdict_rows, save_btn]
        pick_btn.click(pick, [category, current], round_outputs, api_visibility="private")
        grade_btn.click(grade, [current, answer_box], [result, graded, *verdict_rows, save_btn, follow_btn],
                        api_visibility="private")
        save_btn.click(save, [current, graded, *verdict_rows], [result, graded, save_btn, progress],
                       api_visibility="private")
        follow_btn.click(follow_up, current, round_outputs, api_visibility="private")
    return demo


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Interview Coach web app")
    ap.add_argument("--host", default=os.environ.get("COACH_HOST", "127.0.0.1"), help="default 127.0.0.1 (COACH_HOST)")
    ap.add_argument("--port", type=int, default=None, help="default 7860 (COACH_PORT)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        port = args.port if args.port is not None else int(os.environ.get("COACH_PORT", "7860"))
    except ValueError:
        print(f"error: COACH_PORT={os.environ['COACH_PORT']!r} is not a port number", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        parts, status = build_parts(settings)
    except Exception as err:  # setup problems: say what, no traceback
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    for line in status:
        print(line, flush=True)
    demo = build_ui(parts, status)
    import gradio as gr

    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=port, css=CSS, theme=gr.themes.Soft(), show_error=True,
                footer_links=["api"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
