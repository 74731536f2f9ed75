"""A person's weak questions, with the bank's reference answers, as an Anki deck (``genanki``).

    path = export_weak_deck(progress, "ana", sections, "ana-weak.apkg")   # -> Path, or None if nothing is weak

One note per weak question (its last score under ``below``, weakest first): the
front is the question and its category, the back the reference answer and the
last score.  Ids are stable (the deck's from the person, each note's guid from the
section id), so exporting again and importing updates the same cards in Anki
instead of adding copies.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

MODEL_ID = 1_607_392_319  # fixed: the note type is the same in every export
_CODE = re.compile(r"```\w*\n?(.*?)```", re.S)


def _stable_id(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) | 1 << 30  # Anki ids: positive, < 2**31 here


def to_html(markdown: str) -> str:
    """Reference text -> simple HTML: escaped, code fences as <pre>, **bold**, line breaks kept."""
    out, last = [], 0
    for m in _CODE.finditer(markdown):
        out.append(_prose(markdown[last:m.start()]))
        out.append(f"<pre>{html.escape(m.group(1))}</pre>")
        last = m.end()
    out.append(_prose(markdown[last:]))
    return "".join(out)


def _prose(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", text)
    return text.replace("\n", "<br>")


def weak_deck(person: str, entries, sections: dict):
    """A genanki.Package of the entries (ScheduleEntry) whose sections the bank still has."""
    import genanki

    model = genanki.Model(
        MODEL_ID, "Interview Coach question",
        fields=[{"name": "Question"}, {"name": "Category"}, {"name": "Reference"}, {"name": "Id"},
                {"name": "LastScore"}],
        templates=[{"name": "Card 1",
                    "qfmt": "<div class=cat>{{Category}}</div><h3>{{Question}}</h3>",
                    "afmt": "{{FrontSide}}<hr id=answer>{{Reference}}"
                            "<div class=meta>{{Id}} · last score {{LastScore}}</div>"}],
        css=".cat{color:#6b7280;font-size:80%} .meta{color:#6b7280;font-size:75%;margin-top:1em} "
            "pre{text-align:left;background:#f3f4f6;padding:6px}")
    deck = genanki.Deck(_stable_id(f"deck:{person}"), f"Interview Coach · weak questions · {person}")
    for e in entries:
        section = sections.get(e.section_id)
        if section is None:
            continue
        deck.add_note(genanki.Note(
            model=model, guid=genanki.guid_for("interview-coach", section.id),
            fields=[html.escape(section.title), html.escape(section.category), to_html(section.body),
                    html.escape(section.id), f"{e.last_score:.0f}"],
            tags=["interview-coach", f"category-{section.category_letter or 'x'}"]))
    return genanki.Package(deck), len(deck.notes)


def export_weak_deck(progress, person: str, sections: dict, path: str | Path, below: float = 80.0) -> Path | None:
    """Write the person's weak questions to ``path`` (.apkg); None when there is nothing weak to export.

    Raises coach.state.ProgressError when progress cannot be read."""
    package, n = weak_deck(person, progress.weak(person, below), sections)
    if n == 0:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    package.write_to_file(str(path))
    return path
