"""People in the Gradio app: who is practising (login, a name the browser remembers, or "local"), and
nobody seeing another person's progress.  Pure helpers first; then app.py in a subprocess (hash
embedder: retrieval quality does not matter here) driven by Debian's chromium through Playwright."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import clean_name, due_phrase, load_auth, person_markdown, record_grade, resolve_person
from coach.bank.corpus import parse_bank
from coach.state import MemoryProgress

SECTION = parse_bank("## A. 架构\n**1. KV Cache 原理？**\n推理时缓存历史 K/V。\n", "bank.md")[0]


@pytest.mark.parametrize("login, saved, person", [
    ("ana", "bo", "ana"), (None, "bo", "bo"), (None, "", "local"), (None, None, "local"),
    (None, "  bo  ", "bo"), (None, "<script>", "local"), (None, "slack:U1", "local"), (None, "x" * 61, "local"),
])
def test_resolve_person(login, saved, person):
    assert resolve_person(login, saved) == person


def test_clean_name_and_person_line():
    assert clean_name("Ana Lee") == "Ana Lee" and clean_name("王小明") == "王小明" and clean_name("a/b") == ""
    assert "**ana**" in person_markdown("ana", True) and "login" in person_markdown("ana", True)
    assert "enter your name" in person_markdown("local", False)
    assert "&lt;b" in person_markdown("<b>", False)


def test_load_auth(tmp_path):
    f = tmp_path / "auth"
    f.write_text("# team\nana:pw1\nbo:p:w:2\n\n")
    assert load_auth(str(f)) == [("ana", "pw1"), ("bo", "p:w:2")]
    f.write_text("ana\n")
    with pytest.raises(ValueError, match="line 1 is not 'user:password'"):
        load_auth(str(f))
    with pytest.raises(ValueError, match="cannot be read"):
        load_auth(str(tmp_path / "missing"))


def test_record_grade_saves_for_that_person_or_says_why_not():
    store = MemoryProgress()
    line = record_grade(store, "ana", SECTION, 90.0, 0)
    assert "Saved for ana" in line and "next review in 10 min" in line
    assert [e.section_id for e in store.schedule("ana")] == ["Q1"] and store.schedule("bo") == []
    from coach.state.open import UnavailableProgress

    line = record_grade(UnavailableProgress("progress is not saved: COACH_PROGRESS_URL=..."), "ana", SECTION, 90, 0)
    assert line.startswith("⚠️") and "not saved" in line and "COACH_PROGRESS_URL" in line


def test_due_phrase():
    assert due_phrase(100.0, 100.0) == "now" and due_phrase(700.0, 100.0) == "in 10 min"
    assert due_phrase(100 + 5 * 3600, 100) == "in 5 h" and due_phrase(100 + 9 * 86_400, 100) == "in 9 days"


# -- the page in a real browser ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from tests.test_app_browser import run_app

    tmp = tmp_path_factory.mktemp("people")
    yield from run_app(tmp, tmp / "index", COACH_EMBEDDER="hash")


@pytest.fixture(scope="module")
def browser():
    from tests.test_app_browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_practice(context, url):
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.get_by_role("tab", name="Practice 练习").click()
    page.wait_for_selector("#practice-person")
    return page


def practise_once(page) -> str:
    page.click("#practice-pick")
    page.wait_for_function("() => /\\[(Q|I)\\d+\\]/.test(document.querySelector('#practice-question').innerText)")
    sid = re.search(r"\[((?:Q|I)\d+)\]", page.inner_text("#practice-question")).group(1)
    page.fill("#practice-answer textarea", "推理时缓存历史 K/V，减少重复计算")
    page.click("#practice-grade")
    page.locator("#practice-save").wait_for(state="visible")  # the candidate confirms the verdicts (issue 11)
    page.click("#practice-save")
    page.wait_for_function("() => document.querySelector('#practice-result').innerText.includes('Saved for')")
    return sid


def progress_text(page) -> str:
    return page.inner_text("#progress")


@pytest.mark.integration
def test_a_name_is_remembered_by_the_browser_and_progress_stays_with_its_person(app, browser):
    ana = browser.new_context()
    page = open_practice(ana, app)
    page.wait_for_function("() => document.querySelector('#practice-person').innerText.includes('local')")
    page.fill("#practice-name input, #practice-name textarea", "ana")
    page.click("#practice-name-set")
    page.wait_for_function("() => document.querySelector('#practice-person').innerText.includes('ana')")
    practise_once(page)
    assert "Saved for ana" in page.inner_text("#practice-result")
    page.wait_for_function("() => /\\d/.test(document.querySelector('#progress').innerText)")
    ana_progress = progress_text(page)
    # the charts and what is due (a weak answer: due again in minutes, so "later today" or "now")
    page.wait_for_function("() => /Due today|Nothing due/.test(document.querySelector('#progress-due').innerText)")
    for chart in ("#progress-mastery", "#progress-forecast"):
        page.wait_for_selector(f"{chart} img, {chart} svg, {chart} canvas")
    page.click("#progress-export")
    page.wait_for_function("() => /exported|No weak/.test(document.querySelector('#progress-export-note').innerText)")
    note = page.inner_text("#progress-export-note")
    if "exported" in note:
        page.wait_for_selector("#progress-export-file a")
    page.screenshot(path=str(Path(__file__).resolve().parents[1] / "artifacts" / "people-progress.png"),
                    full_page=True)

    page.reload()  # the browser remembers who this is
    page.get_by_role("tab", name="Practice 练习").click()
    page.wait_for_function("() => document.querySelector('#practice-person').innerText.includes('ana')")
    page.wait_for_function("t => document.querySelector('#progress').innerText === t", arg=ana_progress)

    other = browser.new_context()  # another person's browser: "local", and none of ana's progress
    page2 = open_practice(other, app)
    page2.wait_for_timeout(1500)  # the load event has run
    assert "local" in page2.inner_text("#practice-person")
    assert progress_text(page2) != ana_progress and not re.search(r"\b1\b", progress_text(page2))
    page2.fill("#practice-name input, #practice-name textarea", "bo")
    page2.click("#practice-name-set")
    page2.wait_for_function("() => document.querySelector('#practice-person').innerText.includes('bo')")
    assert progress_text(page2) != ana_progress
    ana.close()
    other.close()


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory):
    from tests.test_app_browser import run_app

    tmp = tmp_path_factory.mktemp("people-auth")
    (tmp / "auth").write_text("ana:pw-ana\nbo:pw-bo\n")
    yield from run_app(tmp, tmp / "index", COACH_EMBEDDER="hash", COACH_AUTH_FILE=str(tmp / "auth"),
                       COACH_PROGRESS_URL="mysql://nowhere")


def login(context, url, user, password):
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.get_by_label(re.compile("username", re.I)).fill(user)
    page.get_by_label(re.compile("password", re.I)).fill(password)
    page.get_by_role("button", name=re.compile("login", re.I)).click()
    page.get_by_role("tab", name="Practice 练习").click()
    return page


@pytest.mark.integration
def test_with_logins_the_login_is_the_person_and_a_bad_store_url_is_named(auth_app, browser):
    ctx = browser.new_context()
    page = login(ctx, auth_app, "bo", "pw-bo")
    page.wait_for_function("() => document.querySelector('#practice-person').innerText.includes('bo')")
    assert "login" in page.inner_text("#practice-person")
    assert not page.locator("#practice-name").is_visible(), "no name to type when there are logins"
    status = page.inner_text("#status")
    assert "COACH_PROGRESS_URL" in status and "not saved" in status
    page.click("#practice-pick")
    page.wait_for_function("() => /\\[(Q|I)\\d+\\]/.test(document.querySelector('#practice-question').innerText)")
    page.fill("#practice-answer textarea", "缓存")
    page.click("#practice-grade")
    page.locator("#practice-save").wait_for(state="visible")
    page.click("#practice-save")
    page.wait_for_function("() => document.querySelector('#practice-result').innerText.includes('not saved')")
    assert "Score" in page.inner_text("#practice-result"), "grading goes on without the store"
    ctx.close()


@pytest.mark.integration
def test_api_sessions_record_and_read_only_their_own_progress(app):
    from gradio_client import Client

    ana, bo = Client(app, verbose=False), Client(app, verbose=False)
    graded = ana.predict("Q13", "推理时缓存历史 K/V", "api-ana", api_name="/practice_grade")
    assert graded["person"] == "api-ana" and graded["saved"] and 0 <= graded["score"] <= 100
    ana.predict("Q14", "减少 KV 头数", "api-ana", api_name="/practice_grade")
    bo.predict("Q13", "不知道", "api-bo", api_name="/practice_grade")
    mine, theirs = ana.predict("api-ana", api_name="/my_progress"), bo.predict("api-bo", api_name="/my_progress")
    assert (mine["person"], mine["attempts"], theirs["attempts"]) == ("api-ana", 2, 1)
    assert bo.predict("api-nobody", api_name="/my_progress")["attempts"] == 0
    assert "unknown section" in ana.predict("Q999", "x", "api-ana", api_name="/practice_grade")["error"]
