"""Headless Chromium through the web page (create, add, search) and the docs page (Try it out)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from kb_client import KBClient
from live_server import serving

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
# A name that is not "localhost": Swagger UI treats local spec URLs differently (validator badge),
# and a deployment is reached by a name like this. Chromium resolves it to the live server and
# every other name to nothing, so an external request fails fast and shows in the network log.
HOST = "kb.example.test"
TIMEOUT = 20
ADMIN_KEY = "admin-key-0123456789"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("apt-get install chromium chromium-driver (scripts/install.sh --dev as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(TIMEOUT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture
def site(make_app: Callable[..., Flask], browser: WebDriver) -> Iterator[str]:
    """The app behind a real HTTP server, addressed by HOST; the browser's logs start empty."""
    with serving(make_app()) as local:
        browser.get_log("performance")
        yield local.replace("127.0.0.1", HOST)


def requested_urls(browser: WebDriver) -> list[str]:
    """Every URL the page asked the network for since the last call (Chrome's DevTools log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_only_own_requests(browser: WebDriver, site: str) -> list[str]:
    urls = requested_urls(browser)
    own = urlsplit(site).netloc
    # chrome:// is the browser's own UI; data: and blob: never leave the page.
    network = [u for u in urls if urlsplit(u).scheme in {"http", "https", "ws", "wss", "ftp"}]
    foreign = [u for u in network if urlsplit(u).netloc != own]
    assert foreign == [], f"requests outside the service: {foreign}"
    return urls


def wait_for(browser: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    return WebDriverWait(browser, TIMEOUT).until(condition)


def status_says(text: str) -> Callable[[WebDriver], bool]:
    return lambda driver: text in driver.find_element(By.ID, "status").text


def fill(element: WebElement, text: str) -> None:
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def shoot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def by_id(browser: WebDriver, id: str) -> WebElement:
    return browser.find_element(By.ID, id)


def test_the_web_page_creates_adds_and_searches(browser, site, fake_embedder):
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    short = fake_embedder.fingerprint[:12]
    assert f"fake-model ({short})" in by_id(browser, "service-info").text
    shoot(browser, "web-1-empty")

    fill(by_id(browser, "create-name"), "notes")
    fill(by_id(browser, "create-description"), "team notes")
    by_id(browser, "create-submit").click()
    wait_for(browser, status_says("created notes"))
    assert by_id(browser, "kb-select").get_attribute("value") == "notes"
    assert f"fake-model ({short})" in by_id(browser, "kb-list").text

    documents = [
        ("bread", "A man is eating a piece of bread.", '{"lang": "en"}'),
        ("market", "The stock market fell sharply on Monday.", ""),
    ]
    for id, text, metadata in documents:
        fill(by_id(browser, "add-id"), id)
        fill(by_id(browser, "add-text"), text)
        fill(by_id(browser, "add-metadata"), metadata)
        by_id(browser, "add-submit").click()
        wait_for(browser, status_says(f"added {id} to notes"))
    row = browser.find_element(By.CSS_SELECTOR, '#kb-list tr[data-name="notes"]')
    assert [cell.text for cell in row.find_elements(By.TAG_NAME, "td")][:3] == ["notes", "2", "2"]
    shoot(browser, "web-2-added")

    fill(by_id(browser, "search-query"), "A man is eating a piece of bread.")
    by_id(browser, "search-submit").click()
    wait_for(browser, status_says("2 hits in notes"))
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits li")
    first = hits[0]
    assert first.find_element(By.CLASS_NAME, "hit-id").text == "bread"
    assert first.find_element(By.CLASS_NAME, "score").text == "1.0000"
    assert first.find_element(By.TAG_NAME, "mark").text == "A man is eating a piece of bread."
    assert '"lang":"en"' in first.find_element(By.CLASS_NAME, "hit-meta").text
    assert hits[1].find_element(By.CLASS_NAME, "hit-id").text == "market"
    shoot(browser, "web-3-search")
    assert_only_own_requests(browser, site)


def test_the_web_page_highlights_the_passage_inside_a_long_text(browser, site):
    query = "Bread is baked in an oven."
    text = "Unrelated words about weather and rain. " * 10 + query
    with KBClient(site.replace(HOST, "127.0.0.1"), retries=0) as client:
        client.create_knowledge_base("long")
        client.add_document("long", text, id="bakery")
        passage = client.search("long", query)[0]["passage"]
    assert 0 < passage["start"] < passage["end"] == len(text)  # a later window, not the whole
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    fill(by_id(browser, "search-query"), query)
    by_id(browser, "search-submit").click()
    wait_for(browser, status_says("1 hit in long"))
    mark = browser.find_element(By.CSS_SELECTOR, "#hits li mark").text
    assert mark == passage["text"] == text[passage["start"] : passage["end"]]
    shoot(browser, "web-4-long-text")


def test_the_web_page_shows_the_services_error_message(browser, site):
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    for _ in range(2):
        fill(by_id(browser, "create-name"), "twice")
        by_id(browser, "create-submit").click()
    wait_for(browser, lambda d: by_id(d, "status").get_attribute("class") == "error")
    assert "twice" in by_id(browser, "status").text
    shoot(browser, "web-5-error")


def test_with_api_keys_the_page_asks_for_a_key_and_sends_it(make_app, browser):
    with serving(make_app(api_keys=ADMIN_KEY)) as local:
        site = local.replace("127.0.0.1", HOST)
        browser.get(site + "/")
        wait_for(browser, status_says("API key"))
        fill(by_id(browser, "api-key"), ADMIN_KEY)
        by_id(browser, "key-submit").click()
        wait_for(browser, status_says("ready"))
        fill(by_id(browser, "create-name"), "secret")
        by_id(browser, "create-submit").click()
        wait_for(browser, status_says("created secret"))
        shoot(browser, "web-6-api-key")


def test_the_docs_page_loads_offline_and_try_it_out_runs_a_search(browser, site):
    with KBClient(site.replace(HOST, "127.0.0.1"), retries=0) as client:
        client.create_knowledge_base("notes")
        client.add_document("notes", "A man is eating a piece of bread.", id="bread")
    browser.get(site + "/docs")
    summary = wait_for(
        browser,
        lambda d: d.find_element(
            By.CSS_SELECTOR,
            "#operations-search-post_v1_knowledge_bases__kb__search .opblock-summary",
        ),
    )
    shoot(browser, "docs-1-loaded")
    urls = assert_only_own_requests(browser, site)
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in urls)
    assert any(u.endswith("/openapi.json") for u in urls)

    operation = summary.find_element(By.XPATH, "..")
    summary.click()
    wait_for(browser, lambda d: operation.find_element(By.CLASS_NAME, "try-out__btn")).click()
    fill(operation.find_element(By.CSS_SELECTOR, "input[placeholder='kb']"), "notes")
    body = operation.find_element(By.CSS_SELECTOR, "textarea.body-param__text")
    fill(body, json.dumps({"query": "Someone is eating bread.", "top_k": 3}))
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = wait_for(
        browser,
        lambda d: operation.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        ),
    )
    assert status.text.strip().startswith("200")
    answer = operation.find_element(
        By.CSS_SELECTOR, ".live-responses-table .response-col_description .microlight"
    ).text
    assert json.loads(answer)["hits"][0]["id"] == "bread"
    browser.execute_script("arguments[0].scrollIntoView()", status)
    shoot(browser, "docs-2-try-it-out")
    assert_only_own_requests(browser, site)


def test_the_web_page_adds_files_picked_or_dropped_with_progress(make_app, browser, tmp_path):
    from file_samples import pdf

    note, report = tmp_path / "note.md", tmp_path / "report.pdf"
    note.write_text("# Bikes\n\nLeave your bike in the courtyard rack.\n")
    report.write_bytes(pdf(["Revenue grew in the third quarter."], title="Q3 report"))
    # One file per request at most before a job: two files go through the 202 job path.
    with serving(make_app(files_job_files=1)) as local, KBClient(local, retries=0) as client:
        client.create_knowledge_base("files")
        site = local.replace("127.0.0.1", HOST)
        browser.get(site + "/")
        wait_for(browser, status_says("ready"))
        picker = by_id(browser, "upload-files")
        picker.send_keys(f"{note}\n{report}")  # the file dialog, as chromedriver fills it
        wait_for(browser, lambda d: "added 2 documents" in by_id(d, "upload-status").text)
        assert by_id(browser, "upload-progress").get_attribute("value") == "1"
        shoot(browser, "web-7-files-picked")
        assert client.get_document("files", "report.pdf")["metadata"]["title"] == "Q3 report"

        # Drag and drop: the same drop event a file dragged from the desktop fires.
        browser.execute_script(
            """
            const data = new DataTransfer();
            data.items.add(new File(["# Trains\\n\\nThe company pays for your train ticket."],
                                    "trains.md", {type: "text/markdown"}));
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true,
                                                          cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true,
                                                      cancelable: true}));
            """
        )
        wait_for(browser, lambda d: "added 1 document to files" in by_id(d, "upload-status").text)
        got = client.get_document("files", "trains.md")
        assert "train ticket" in got["text"] and got["metadata"]["source"] == "trains.md"
        row = browser.find_element(By.CSS_SELECTOR, '#kb-list tr[data-name="files"]')
        assert row.find_elements(By.TAG_NAME, "td")[1].text == "3"

        # A file the service cannot read: its message, shown where errors go.
        browser.execute_script(
            """
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array([0, 1, 2])], "photo.png", {type: "image/png"}));
            document.getElementById("drop-zone").dispatchEvent(
                new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            """
        )
        wait_for(browser, lambda d: by_id(d, "upload-status").get_attribute("class") == "error")
        assert "photo.png" in by_id(browser, "upload-status").text
        assert "photo.png" in by_id(browser, "status").text
        shoot(browser, "web-8-files-dropped")
        assert_only_own_requests(browser, site)
