"""Answer -> Slack messages: mrkdwn, citation context blocks, and Slack's size limits.

Pure functions, no slack_bolt import.  ``to_mrkdwn("**KV** `a**b`")`` -> ``"*KV* `a**b`"``:
Markdown bold/strike/headings/links become Slack mrkdwn, ``&``, ``<``, ``>`` are
escaped (a ``>`` that opens a quote line stays), and code (fenced or inline) is
only escaped, never restyled.

Limits (Slack docs: section block text <= 3000 chars, message text <= 40000,
<= 50 blocks, context block <= 10 elements).  ``split_mrkdwn`` cuts at line
ends and, when a cut falls inside a code fence, closes it and reopens it in
the next piece; ``answer_messages`` packs the pieces into as few messages as
the limits allow and puts the citations under the last one.

The three outcomes look different: an answer is plain text with its citations; related material
opens with a header block of its own (``RELATED_HEADER``) and lists its sections as "related", not
as citations; a decline is a polite note with nearby titles, or the bank's categories when the
question is clearly off-topic.
"""

from __future__ import annotations

import re

from ..text import language_of
from ..types import Answer

SECTION_LIMIT = 3000  # characters of one section block's text
MESSAGE_LIMIT = 40000  # characters of a message's text
BLOCKS_PER_MESSAGE = 45  # Slack allows 50; room for the context blocks
CONTEXT_ELEMENTS = 10
RELATED_HEADER = {"Chinese": "题库中没有直接回答这个问题的条目 · related material",
                  "English": "Nothing in the bank answers this · related material"}

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]+`", re.DOTALL)  # fenced (maybe unclosed) or inline code
_FENCE = "```"


def escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _prose(text: str) -> str:
    text = escape(text)
    text = re.sub(r"(?m)^((?:&gt; ?)+)", lambda m: m.group(1).replace("&gt;", ">"), text)  # quote lines
    text = re.sub(r"(?m)^(>? ?)#{1,6}\s+(.+?)\s*#*$", r"\1*\2*", text)  # headings -> bold lines
    text = re.sub(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", r"*\1*", text)
    text = re.sub(r"(?<![\w])__(?=\S)(.+?)(?<=\S)__(?![\w])", r"*\1*", text)
    text = re.sub(r"~~(?=\S)(.+?)(?<=\S)~~", r"~\1~", text)
    text = re.sub(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)", r"<\2|\1>", text)
    return re.sub(r"(?m)^(>? ?)(\s*)[-+] ", r"\1\2• ", text)


def to_mrkdwn(markdown: str) -> str:
    """Markdown (as the coach writes it) -> Slack mrkdwn; code spans and blocks keep their text."""
    out, last = [], 0
    for m in _CODE.finditer(markdown):
        out.append(_prose(markdown[last : m.start()]))
        out.append(escape(m.group(0)))
        last = m.end()
    out.append(_prose(markdown[last:]))
    return "".join(out)


def split_mrkdwn(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` chars, cut at line ends, code fences closed and reopened."""
    if limit < 100:
        raise ValueError(f"limit {limit} is too small for a piece of a message; use at least 100")
    budget = limit - len(_FENCE) - 1  # room to close a fence that is open at the cut
    pieces: list[str] = []
    current, in_fence = "", False

    def flush() -> None:
        nonlocal current
        if current.strip() and current.strip() != _FENCE:
            pieces.append(current.rstrip("\n") + ("\n" + _FENCE if in_fence else ""))
            current = _FENCE + "\n" if in_fence else ""

    for line in text.split("\n"):
        rest = line
        while True:
            if len(current) + len(rest) + 1 <= budget:
                current += rest + "\n"
                break
            if current.strip() and len(rest) + 1 <= budget - len(_FENCE) - 1:
                flush()  # the line fits a fresh piece: cut before it
                continue
            take = budget - len(current) - 1  # a line longer than a piece: hard cut
            if take < 40:
                flush()
                continue
            current += rest[:take] + "\n"
            rest = rest[take:]
            flush()
        if line.count(_FENCE) % 2:
            in_fence = not in_fence
    if current.strip() and current.strip() != _FENCE:
        pieces.append(current.rstrip("\n"))
    return pieces


def citation_block(answer: Answer) -> dict | None:
    """A context block: one element per cited section, ``*Q13* KV Cache 原理？`` (related: ``related: *Q13* ...``)."""
    if not answer.citations:
        return None
    label = "related: " if answer.outcome == "related" else ""
    elements = [{"type": "mrkdwn", "text": f"{label}*{c.id}* {escape(c.title)}"[:300]}
                for c in answer.citations[:CONTEXT_ELEMENTS]]
    return {"type": "context", "elements": elements}


def related_header(answer: Answer) -> dict:
    """The header block that opens related material (Slack: plain text, at most 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": RELATED_HEADER[language_of(answer.question)][:150]}}


def decline_mrkdwn(answer: Answer) -> str:
    """A polite decline that lists the bank's nearby topics."""
    zh = language_of(answer.question) == "Chinese"
    head = ("抱歉，题库里没有能回答这个问题的内容，我不想凭空猜测。" if zh else
            "Sorry — the question bank doesn't cover this, and I'd rather not guess.")
    if answer.categories:
        head += ("\n这个问题不在题库的范围内。题库涵盖这些类别：" if zh else
                 "\nIt is outside the bank's scope. These are the categories the bank covers:")
        head += "".join(f"\n• {escape(c)}" for c in answer.categories)
    elif answer.suggestions:
        head += ("\n可以试试这些相近的题目：" if zh else "\nHere are nearby topics it does cover:")
        head += "".join(f"\n• {escape(t)}" for t in answer.suggestions)
    return head + ("\n（在本线程里换个问法再 @我 也可以。）" if zh else "\n(You can rephrase and ask again in this thread.)")


def notice_block(notices) -> dict | None:
    if not notices:
        return None
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f":information_source: {escape(n)}"[:300]}
                                            for n in list(notices)[:CONTEXT_ELEMENTS]]}


def text_messages(body_mrkdwn: str, tail_blocks: list[dict] = (), head_blocks: list[dict] = ()) -> list[dict]:
    """Mrkdwn -> chat.postMessage payloads (``text`` + ``blocks``) within Slack's limits; ``head_blocks`` open the
    first message, ``tail_blocks`` close the last."""
    pieces = split_mrkdwn(body_mrkdwn) or [" "]
    messages, group = [], []
    for piece in pieces:
        if len(group) == BLOCKS_PER_MESSAGE or sum(len(p) + 1 for p in group) + len(piece) > MESSAGE_LIMIT - 1000:
            messages.append(group)
            group = []
        group.append(piece)
    messages.append(group)
    out = []
    for i, group in enumerate(messages):
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in group]
        if i == 0:
            blocks = [b for b in head_blocks if b] + blocks
        if i == len(messages) - 1:
            blocks += [b for b in tail_blocks if b]
        out.append({"text": "\n".join(group)[:MESSAGE_LIMIT], "blocks": blocks})
    return out


def answer_messages(answer: Answer) -> list[dict]:
    """The whole reply to one question: answer, related material (under its header) or polite decline; notices;
    citations."""
    body = decline_mrkdwn(answer) if answer.declined else to_mrkdwn(answer.text)
    head = [related_header(answer)] if answer.outcome == "related" else []
    return text_messages(body, [notice_block(answer.notices), citation_block(answer)], head)


def practice_messages(section) -> list[dict]:
    """The question of a practice round; the user answers in its thread."""
    body = (f"*Practice round* · {escape(section.id)} · {escape(section.category)}\n"
            f"*{escape(section.title)}*\n"
            "Reply in this thread with your answer and I'll grade it against the bank's reference answer.")
    return text_messages(body)


VERDICT_MARKS = {"covered": "✓ covered", "partial": "½ partial", "contradicted": "✗ wrong", "missing": "○ missing"}
CONFIRM_ACTION, POINT_ACTION = "grade_confirm", "grade_point"  # Block Kit action ids (POINT_ACTION + "_<i>")
MAX_POINT_SELECTS = 20  # an actions block holds 25 elements: selectors for up to 20 points, and the button


def judged_by(grade) -> str:
    """What judged, said plainly (mrkdwn)."""
    if grade.judge.startswith("llm:"):
        return f"_Judged by the LLM `{escape(grade.judge[4:])}`: confirm or correct it below._"
    return ("_Judged by an automatic check of the reference's points (offline, not an LLM): "
            "confirm or correct each verdict below._")


def grade_messages(grade, section) -> list[dict]:
    """A Grade (score, a verdict per point with its evidence, feedback, notes) and the reference answer."""
    lines = [f"*Score: {grade.score:.0f}/100* · {escape(section.id)} {escape(section.title)}", judged_by(grade)]
    points = []
    for i, v in enumerate(grade.points, start=1):
        evidence = f" — “{escape(v.evidence[:200])}”" if v.evidence else ""
        why = f" _({escape(v.why[:200])})_" if v.why else ""  # the cue or claim the verdict rests on
        points.append(f"{i}. *{VERDICT_MARKS[v.verdict]}* · {escape(v.point)}{evidence}{why}")
    lines.append("*Key points:*\n" + ("\n".join(points) or "none"))
    lines.append(f"*Covered:* {len(grade.covered)} · *Wrong:* {len(grade.contradicted)} · "
                 f"*Missed:* {len(grade.missed) - len(grade.contradicted)}")
    if grade.feedback:
        lines.append(to_mrkdwn(grade.feedback))
    lines += [f"_{escape(n)}_" for n in getattr(grade, "notes", ())]
    reference = grade.reference or section.body
    lines.append("*Reference answer:*\n" + "\n".join(f"> {line}" if line.strip() else ">"
                                                   for line in to_mrkdwn(reference).splitlines()))
    lines.append("_Type `/coach practice` for another question._")
    return text_messages("\n\n".join(lines))


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The same messages with ``note`` (mrkdwn, already escaped) as a context block under the last one."""
    if not note or not messages:
        return messages
    last = dict(messages[-1])
    blocks = list(last["blocks"])
    if len(blocks) >= 50:
        return messages
    last["blocks"] = blocks + [{"type": "context", "elements": [{"type": "mrkdwn", "text": note[:3000]}]}]
    last["text"] = (last["text"] + "\n" + note)[:MESSAGE_LIMIT]
    return messages[:-1] + [last]


def progress_mrkdwn(stats, schedule, sections: dict, now: float, weak_limit: int = 8) -> str:
    """``/coach progress``: categories (attempts, average, last), due now and later today, weak questions, and
    how many fall due on each of the next 7 days — the app's charts, in text."""
    from ..state.report import day_label, summary

    if not schedule:
        return ("*Your progress*\nNothing recorded yet: type `/coach practice` for a question, answer in its "
                "thread, and your grades will show here (only you see this).")
    s = summary(stats, schedule, now)
    title = lambda sid: escape(sections[sid].title) if sid in sections else ""  # noqa: E731
    lines = ["*Your progress* (only you see this)", "*Categories:*"]
    lines += [f"• {escape(c.category)}: {c.attempts} attempt{'s' * (c.attempts != 1)}, average {c.average:.0f}, "
              f"last {c.last:.0f}" for c in s.categories]
    due = list(s.due_now)
    lines.append(f"*Due now ({len(due)}):*" + ("".join(f"\n• {e.section_id} {title(e.section_id)}" for e in due[:10])
                                               or " nothing"))
    upcoming = [e for e in schedule if e.due > now][:5]
    if upcoming:
        lines.append("*Next reviews:*" + "".join(
            f"\n• {e.section_id} {title(e.section_id)}: <!date^{int(e.due)}^{{date_short_pretty}} {{time}}|"
            f"{day_label(e.due)}>" for e in upcoming))
    if s.due_today:
        lines.append(f"*Later today:* {len(s.due_today)} more")
    weak = list(s.weak)[:weak_limit]
    lines.append("*Weak questions:*" + ("".join(f"\n• {e.section_id} {title(e.section_id)}: last {e.last_score:.0f}"
                                                for e in weak) or " none: every last score is 80 or more"))
    lines.append("*Due in the coming days:* " + " · ".join(f"{day_label(d)}: {n}" for d, n in s.forecast))
    lines.append("_Type `/coach practice` to review; due questions come first._")
    return "\n".join(lines)


def confirm_message(grade, verdicts, confirmed_by: str | None = None) -> dict:
    """The message with which the candidate confirms or corrects ``grade``: a selector per point and a button.

    ``verdicts`` are the current choices (one per point).  Once confirmed, the controls go and the
    message says who confirmed which score."""
    from ..grading import confirm

    current = confirm(grade, list(verdicts))
    summary = " ".join(f"{i}{VERDICT_MARKS[v][:1]}" for i, v in enumerate(verdicts, start=1))
    if confirmed_by:
        text = (f"*Confirmed by <@{escape(confirmed_by)}>: {current.score:.0f}/100* ({summary}). "
                "This is the score that counts.")
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    text = (f"*Your grade: {current.score:.0f}/100* ({summary}). Change any verdict you disagree with, "
            "then confirm.")
    options = [{"text": {"type": "plain_text", "text": label}, "value": v} for v, label in VERDICT_MARKS.items()]
    elements = []
    for i, v in enumerate(list(verdicts)[:MAX_POINT_SELECTS]):
        elements.append({"type": "static_select", "action_id": f"{POINT_ACTION}_{i}",
                         "placeholder": {"type": "plain_text", "text": f"point {i + 1}"},
                         "options": [{**o, "text": {"type": "plain_text", "text": f"{i + 1}. {o['text']['text']}"}}
                                     for o in options],
                         "initial_option": {"text": {"type": "plain_text", "text": f"{i + 1}. {VERDICT_MARKS[v]}"},
                                            "value": v}})
    elements.append({"type": "button", "action_id": CONFIRM_ACTION, "style": "primary", "value": "confirm",
                     "text": {"type": "plain_text", "text": "Confirm grade"}})
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                                     {"type": "actions", "block_id": "grade_actions", "elements": elements}]}
