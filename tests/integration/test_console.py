"""The console at `/` in headless Chromium: knowledge bases, documents, errors, keyboard, 400 px.

Search, files and jobs are in test_console_search.py; the fixtures in browsing.py.
"""

from __future__ import annotations

import json

import pytest
from browsing import (
    ADMIN_KEY,
    HOST,
    assert_only_own_requests,
    by_id,
    fill,
    shoot,
    status_says,
    wait_for,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from kb_client import KBClient
from live_server import serving

pytestmark = pytest.mark.browser


def client_for(site: str) -> KBClient:
    return KBClient(site.replace(HOST, "127.0.0.1"), retries=0)


def open_console(browser, site) -> None:
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))


def kb_row(browser, name: str):
    return browser.find_element(By.CSS_SELECTOR, f'#kb-list tr[data-name="{name}"]')


def cells(row) -> list[str]:
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def doc_ids(browser) -> list[str]:
    """The listed ids, read in one go (the list is redrawn as pages load)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#docs-list tr[data-id]')].map(r => r.dataset.id)"
    )


def confirm(browser, yes: bool) -> None:
    dialog = wait_for(
        browser,
        lambda d: (
            by_id(d, "confirm-dialog")
            if by_id(d, "confirm-dialog").get_attribute("open") is not None
            else None
        ),
    )
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-cancel"
    dialog.find_element(By.ID, "confirm-ok" if yes else "confirm-cancel").click()
    wait_for(browser, lambda d: by_id(d, "confirm-dialog").get_attribute("open") is None)


def in_view(browser, element) -> bool:
    return browser.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
        element,
    )


def test_the_console_creates_adds_and_searches(browser, site, fake_embedder):
    open_console(browser, site)
    short = fake_embedder.fingerprint[:12]
    assert f"fake-model ({short})" in by_id(browser, "service-info").text
    shoot(browser, "web-1-empty")

    fill(by_id(browser, "create-name"), "notes")
    fill(by_id(browser, "create-description"), "team notes")
    Select(by_id(browser, "create-chunking")).select_by_value("truncate")
    by_id(browser, "create-submit").click()
    wait_for(browser, status_says("created notes"))
    assert "truncate" in by_id(browser, "status").text
    assert by_id(browser, "kb-select").get_attribute("value") == "notes"
    assert f"fake-model ({short})" in by_id(browser, "kb-list").text
    with client_for(site) as client:
        assert client.get_knowledge_base("notes")["chunking"] == "truncate"

    for id, text, metadata in [
        ("bread", "A man is eating a piece of bread.", '{"lang": "en"}'),
        ("market", "The stock market fell sharply on Monday.", ""),
    ]:
        fill(by_id(browser, "add-id"), id)
        fill(by_id(browser, "add-text"), text)
        fill(by_id(browser, "add-metadata"), metadata)
        by_id(browser, "add-submit").click()
        wait_for(browser, status_says(f"added {id} to notes"))
    assert cells(kb_row(browser, "notes"))[:3] == ["notes", "2", "2"]
    wait_for(browser, lambda d: doc_ids(d) == ["bread", "market"])
    shoot(browser, "web-2-added")

    fill(by_id(browser, "search-query"), "A man is eating a piece of bread.")
    by_id(browser, "search-submit").click()
    wait_for(browser, status_says("2 hits in notes"))
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits li")
    first = hits[0]
    assert first.find_element(By.CLASS_NAME, "hit-id").text == "bread"
    assert first.find_element(By.CLASS_NAME, "score").text == "1.0000"
    # Only the query's words that carry meaning are marked, not the whole window.
    marks = [mark.text for mark in first.find_elements(By.TAG_NAME, "mark")]
    assert marks == ["man", "eating", "piece", "bread"]
    assert first.find_element(By.CLASS_NAME, "passage").text == "A man is eating a piece of bread."
    assert '"lang":"en"' in first.find_element(By.CLASS_NAME, "hit-meta").text
    assert hits[1].find_element(By.CLASS_NAME, "hit-id").text == "market"
    shoot(browser, "web-3-search")
    assert_only_own_requests(browser, site)


def test_an_error_shows_next_to_its_action_in_view_and_is_announced(browser, site):
    open_console(browser, site)
    for _ in range(2):
        fill(by_id(browser, "create-name"), "twice")
        by_id(browser, "create-submit").click()
        wait_for(browser, lambda d: not by_id(d, "create-submit").get_attribute("aria-busy"))
    error = wait_for(
        browser, lambda d: by_id(d, "create-error") if by_id(d, "create-error").text else None
    )
    assert "twice" in error.text and error.get_attribute("role") == "alert"
    assert in_view(browser, error)
    assert "twice" in by_id(browser, "status").text  # and in the status line, as before
    assert by_id(browser, "status").get_attribute("class") == "error"
    # An invalid JSON field: refused in the page, next to its form.
    fill(by_id(browser, "add-text"), "some text")
    fill(by_id(browser, "add-metadata"), "{not json")
    by_id(browser, "add-submit").click()
    error = wait_for(
        browser, lambda d: by_id(d, "add-error") if by_id(d, "add-error").text else None
    )
    assert "metadata is not valid JSON" in error.text and in_view(browser, error)
    shoot(browser, "web-5-error")


def test_with_api_keys_the_page_asks_for_a_key_and_sends_it(make_app, browser):
    with serving(make_app(api_keys=ADMIN_KEY)) as local:
        site = local.replace("127.0.0.1", HOST)
        browser.get(site + "/")
        wait_for(browser, status_says("API key"))
        assert "API key" in by_id(browser, "key-error").text  # next to the key field
        fill(by_id(browser, "api-key"), ADMIN_KEY)
        by_id(browser, "key-submit").click()
        wait_for(browser, status_says("ready"))
        assert not by_id(browser, "key-error").is_displayed()
        fill(by_id(browser, "create-name"), "secret")
        by_id(browser, "create-submit").click()
        wait_for(browser, status_says("created secret"))
        shoot(browser, "web-6-api-key")


def test_a_knowledge_base_is_edited_and_deleted_after_confirmation(browser, site):
    with client_for(site) as client:
        client.create_knowledge_base("keep", "old words")
        client.create_knowledge_base("gone")
        client.add_document("gone", "to be deleted", id="d1")
        open_console(browser, site)
        kb_row(browser, "keep").find_element(By.XPATH, ".//button[text()='Edit']").click()
        dialog = by_id(browser, "kb-edit-dialog")
        assert dialog.get_attribute("open") is not None
        assert by_id(browser, "kb-edit-description").get_attribute("value") == "old words"
        fill(by_id(browser, "kb-edit-metadata"), "[1, 2]")
        by_id(browser, "kb-edit-submit").click()
        error = wait_for(
            browser, lambda d: by_id(d, "kb-edit-error") if by_id(d, "kb-edit-error").text else None
        )
        assert "JSON object" in error.text and in_view(browser, error)  # inside the dialog
        fill(by_id(browser, "kb-edit-description"), "new words")
        fill(by_id(browser, "kb-edit-metadata"), '{"owner": "ops"}')
        by_id(browser, "kb-edit-submit").click()
        wait_for(browser, status_says("saved keep"))
        assert dialog.get_attribute("open") is None
        assert cells(kb_row(browser, "keep"))[4] == "new words"
        got = client.get_knowledge_base("keep")
        assert got["description"] == "new words" and got["metadata"] == {"owner": "ops"}

        kb_row(browser, "gone").find_element(By.XPATH, ".//button[text()='Delete']").click()
        assert "1 documents" in by_id(browser, "confirm-message").text
        shoot(browser, "web-9-confirm")
        confirm(browser, yes=False)
        assert client.get_knowledge_base("gone")["document_count"] == 1
        kb_row(browser, "gone").find_element(By.XPATH, ".//button[text()='Delete']").click()
        confirm(browser, yes=True)
        wait_for(browser, status_says("deleted gone"))
        assert [kb["name"] for kb in client.list_knowledge_bases()["items"]] == ["keep"]
        assert not browser.find_elements(By.CSS_SELECTOR, '#kb-list tr[data-name="gone"]')
    assert_only_own_requests(browser, site)


def test_documents_are_paged_filtered_opened_edited_and_deleted(browser, site):
    long_text = " ".join(f"word{i}" for i in range(40))  # several chunks (window of 16)
    with client_for(site) as client:
        client.create_knowledge_base("docs")
        client.add_documents(
            "docs",
            [
                {
                    "id": f"d{i:02}",
                    "text": f"note {i}",
                    "metadata": {"lang": "fr" if i % 3 else "en"},
                }
                for i in range(23)
            ]
            + [{"id": "long", "text": long_text, "metadata": {"lang": "en"}}],
        )
        open_console(browser, site)
        Select(by_id(browser, "docs-limit")).select_by_visible_text("10")
        wait_for(browser, lambda d: len(doc_ids(d)) == 10)
        assert (
            doc_ids(browser)[0] == "d00"
            and "more on the next page" in by_id(browser, "docs-page").text
        )
        by_id(browser, "docs-next").click()
        wait_for(browser, lambda d: doc_ids(d)[:1] == ["d10"])
        by_id(browser, "docs-next").click()
        wait_for(browser, lambda d: doc_ids(d) == ["d20", "d21", "d22", "long"])
        assert by_id(browser, "docs-next").get_attribute("disabled") is not None
        by_id(browser, "docs-first").click()
        wait_for(browser, lambda d: doc_ids(d)[:1] == ["d00"])

        fill(by_id(browser, "docs-filter"), '{"lang": "en"}')
        by_id(browser, "docs-submit").click()
        expected = [f"d{i:02}" for i in range(0, 23, 3)] + ["long"]
        wait_for(browser, lambda d: doc_ids(d) == expected)
        fill(by_id(browser, "docs-filter"), '{"lang": {"$bad": 1}}')
        by_id(browser, "docs-submit").click()
        error = wait_for(
            browser, lambda d: by_id(d, "docs-error") if by_id(d, "docs-error").text else None
        )
        assert in_view(browser, error)
        fill(by_id(browser, "docs-filter"), "")
        by_id(browser, "docs-submit").click()
        wait_for(browser, lambda d: not by_id(d, "docs-error").is_displayed())

        # Open one: its text, metadata, hash and each chunk's text cut from its span.
        by_id(browser, "docs-next").click()
        by_id(browser, "docs-next").click()
        wait_for(browser, lambda d: "long" in doc_ids(d))
        browser.find_element(By.CSS_SELECTOR, '#docs-list tr[data-id="long"] button').click()
        wait_for(browser, lambda d: by_id(d, "doc-title").text == "Document long")
        stored = client.get_document("docs", "long")
        assert by_id(browser, "doc-hash").text == stored["content_hash"]
        assert by_id(browser, "doc-text").text == long_text
        chunks = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#doc-chunks .chunk-text")]
        assert chunks == [long_text[s["start"] : s["end"]] for s in stored["spans"]]
        assert len(chunks) == stored["chunks"] > 1
        assert json.loads(by_id(browser, "doc-metadata").get_attribute("value")) == {"lang": "en"}
        assert browser.switch_to.active_element.get_attribute("id") == "doc-title"
        shoot(browser, "web-10-document")

        fill(by_id(browser, "doc-metadata"), '{"lang": "en", "reviewed": true}')
        by_id(browser, "doc-meta-submit").click()
        wait_for(browser, status_says("saved the metadata of long"))
        assert client.get_document("docs", "long")["metadata"] == {"lang": "en", "reviewed": True}

        by_id(browser, "doc-delete").click()
        confirm(browser, yes=True)
        wait_for(browser, status_says("deleted long from docs"))
        assert not by_id(browser, "doc-view").is_displayed()
        assert "long" not in [d["id"] for d in client.list_documents("docs", limit=100)["items"]]
        # A row's own delete button.
        by_id(browser, "docs-first").click()
        wait_for(browser, lambda d: doc_ids(d)[:1] == ["d00"])
        browser.find_element(By.CSS_SELECTOR, 'button[aria-label="delete d00"]').click()
        confirm(browser, yes=True)
        wait_for(browser, lambda d: doc_ids(d)[:1] == ["d01"])
        assert cells(kb_row(browser, "docs"))[1] == "22"
    assert_only_own_requests(browser, site)


def press(browser, *keys) -> None:
    ActionChains(browser).send_keys(*keys).perform()


def tab_to(browser, is_it, limit: int = 80):
    """Tab (forwards) until the focused element is the one wanted: the keyboard's way there."""
    for _ in range(limit):
        press(browser, Keys.TAB)
        active = browser.switch_to.active_element
        if is_it(active):
            return active
    raise AssertionError("not reachable by Tab")


def test_the_console_works_by_keyboard_alone(browser, site):
    with client_for(site) as client:
        client.create_knowledge_base("first")
        client.add_document("first", "Leave your bike in the courtyard rack.", id="bikes")
    open_console(browser, site)
    browser.find_element(By.TAG_NAME, "body").click()
    field = tab_to(browser, lambda e: e.get_attribute("id") == "create-name")
    outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", field)
    assert outline != "none"  # focus is visible
    press(browser, "kbd")
    press(browser, Keys.ENTER)  # Enter submits the form
    wait_for(browser, status_says("created kbd"))
    assert browser.switch_to.active_element.get_attribute("id") == "create-name"  # focus kept

    # Edit by keyboard: Space on the Edit button opens the dialog, Escape closes it.
    tab_to(browser, lambda e: e.get_attribute("aria-label") == "edit kbd")
    press(browser, Keys.SPACE)
    wait_for(browser, lambda d: by_id(d, "kb-edit-dialog").get_attribute("open") is not None)
    assert browser.switch_to.active_element.get_attribute("id") == "kb-edit-description"
    press(browser, "typed")
    press(browser, Keys.ENTER)
    wait_for(browser, status_says("saved kbd"))
    assert browser.switch_to.active_element.get_attribute("aria-label") == "work in kbd"

    # Delete by keyboard: the dialog focuses Cancel; Tab to Delete and Enter.
    tab_to(browser, lambda e: e.get_attribute("aria-label") == "delete kbd")
    press(browser, Keys.ENTER)
    wait_for(browser, lambda d: by_id(d, "confirm-dialog").get_attribute("open") is not None)
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-cancel"
    press(browser, Keys.ESCAPE)
    wait_for(browser, lambda d: by_id(d, "confirm-dialog").get_attribute("open") is None)
    # Focus is back on the button that opened the dialog.
    assert browser.switch_to.active_element.get_attribute("aria-label") == "delete kbd"
    press(browser, Keys.ENTER)
    wait_for(browser, lambda d: by_id(d, "confirm-dialog").get_attribute("open") is not None)
    press(browser, Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-ok"
    press(browser, Keys.ENTER)
    wait_for(browser, status_says("deleted kbd"))

    # Search by keyboard: Enter searches, Shift+Enter adds a line; the hit's document opens.
    tab_to(browser, lambda e: e.get_attribute("id") == "search-query")
    press(browser, "bike")
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    press(browser, "rack")
    assert by_id(browser, "search-query").get_attribute("value") == "bike\nrack"
    press(browser, Keys.ENTER)
    wait_for(browser, status_says("1 hit in first"))
    tab_to(browser, lambda e: e.get_attribute("aria-label") == "open document bikes")
    press(browser, Keys.SPACE)
    wait_for(browser, lambda d: by_id(d, "doc-title").text == "Document bikes")
    assert browser.switch_to.active_element.get_attribute("id") == "doc-title"
    # Every control on the page is a real control: nothing clickable that Tab cannot reach.
    clickable = browser.execute_script(
        "return document.querySelectorAll('[onclick], td[role=button], span[role=button]').length"
    )
    assert clickable == 0
    assert_only_own_requests(browser, site)


def test_the_console_fits_a_400_pixel_screen(browser, site):
    with client_for(site) as client:
        client.create_knowledge_base("a-rather-long-knowledge-base-name", "a description " * 6)
        client.add_document(
            "a-rather-long-knowledge-base-name",
            "Leave your bike in the courtyard rack. " * 8,
            id="an-identifier-that-is-long-enough-to-overflow-a-narrow-column",
            metadata={"source": "handbook/facilities/bikes-and-parking.md", "tags": ["a", "b"]},
        )
    browser.set_window_size(400, 1000)
    try:
        open_console(browser, site)
        fill(by_id(browser, "search-query"), "bike rack")
        by_id(browser, "search-submit").click()
        wait_for(browser, status_says("1 hit in"))
        browser.find_element(By.CSS_SELECTOR, "#docs-list tr[data-id] button").click()
        wait_for(browser, lambda d: by_id(d, "doc-view").is_displayed())
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, width
        browser.execute_script("window.scrollTo(0, 0)")
        shoot(browser, "web-11-400px")
        browser.execute_script("document.getElementById('doc-view').scrollIntoView()")
        shoot(browser, "web-11-400px-document")
        browser.execute_script("document.getElementById('hits').scrollIntoView()")
        shoot(browser, "web-11-400px-hits")
    finally:
        browser.set_window_size(1280, 1600)
    assert_only_own_requests(browser, site)
