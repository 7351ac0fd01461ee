"""The console's search, file uploads and Jobs panel in headless Chromium (see test_console.py)."""

from __future__ import annotations

import threading
import time

import pytest
from browsing import HOST, assert_only_own_requests, by_id, fill, shoot, status_says, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from kb_client import KBClient
from live_server import serving

pytestmark = pytest.mark.browser

NOTES = [
    ("bikes", "Leave your bike in the courtyard rack behind the office.", {"topic": "office"}),
    ("trains", "The company pays for your train ticket to the office.", {"topic": "travel"}),
    ("bread", "A man is eating a piece of bread in the kitchen.", {"topic": "food"}),
    ("rain", "Rain is expected all week, bring an umbrella.", {"topic": "weather"}),
]


def local(site: str) -> str:
    return site.replace(HOST, "127.0.0.1")


def with_notes(site: str) -> None:
    with KBClient(local(site), retries=0) as client:
        client.create_knowledge_base("notes")
        client.add_documents("notes", [{"id": i, "text": t, "metadata": m} for i, t, m in NOTES])


def search_in_page(browser, query: str, expect: str) -> list:
    fill(by_id(browser, "search-query"), query)
    by_id(browser, "search-submit").click()
    wait_for(browser, status_says(expect))
    return browser.find_elements(By.CSS_SELECTOR, "#hits li")


def test_the_passage_is_set_apart_and_only_the_query_words_are_marked(browser, site):
    query = "Bread is baked in an oven."
    text = "Unrelated words about weather and rain. " * 10 + query
    with KBClient(local(site), retries=0) as client:
        client.create_knowledge_base("long")
        client.add_document("long", text, id="bakery")
        passage = client.search("long", query)[0]["passage"]
    assert 0 < passage["start"] < passage["end"] == len(text)  # a later window, not the whole
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    hit = search_in_page(browser, query, "1 hit in long")[0]
    assert hit.find_element(By.CLASS_NAME, "passage").text == passage["text"]
    assert passage["text"] == text[passage["start"] : passage["end"]]
    marks = [mark.text for mark in hit.find_elements(By.TAG_NAME, "mark")]
    assert marks == ["Bread", "baked", "oven"]  # not "is", "in", "an"
    context = hit.find_elements(By.CLASS_NAME, "context")[0].text
    assert context.startswith("…") and "Unrelated" in context
    shoot(browser, "web-4-long-text")


def test_hybrid_hits_show_the_fused_value_they_are_ordered_by_and_the_cosine(browser, site):
    with_notes(site)
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    Select(by_id(browser, "search-mode")).select_by_value("hybrid")
    fill(by_id(browser, "search-top-k"), "3")
    hits = search_in_page(browser, "bike rack at the office", "3 hits in notes")
    fused = [float(hit.find_element(By.CLASS_NAME, "rank-value").text) for hit in hits]
    assert fused == sorted(fused, reverse=True)
    with KBClient(local(site), retries=0) as client:
        api = client.search("notes", "bike rack at the office", top_k=3, mode="hybrid")
    assert [h.find_element(By.CLASS_NAME, "hit-id").text for h in hits] == [h["id"] for h in api]
    cosines = [hit.find_element(By.CLASS_NAME, "score").text for hit in hits]
    assert cosines == [f"{h['score']:.4f}" for h in api]
    assert "ordered by the fused value" in by_id(browser, "search-summary").text
    assert [m.text for m in hits[0].find_elements(By.TAG_NAME, "mark")] == [
        "bike",
        "rack",
        "office",
    ]

    # Filter, top k, diversity: sent as asked.
    fill(by_id(browser, "search-filter"), '{"topic": "travel"}')
    fill(by_id(browser, "search-diversity"), "0.5")
    hits = search_in_page(browser, "office", "1 hit in notes")
    assert hits[0].find_element(By.CLASS_NAME, "hit-id").text == "trains"
    assert '"topic":"travel"' in hits[0].find_element(By.CLASS_NAME, "hit-meta").text

    # The hit's button opens its document.
    hits[0].find_element(By.XPATH, ".//button[text()='Open document']").click()
    wait_for(browser, lambda d: by_id(d, "doc-title").text == "Document trains")
    shoot(browser, "web-12-hybrid")
    assert_only_own_requests(browser, site)


def test_explain_is_sent_only_when_ticked_and_shown_when_present(browser, site):
    with_notes(site)
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    search_in_page(browser, "office", "4 hits in notes")
    assert not browser.find_elements(By.CSS_SELECTOR, "#hits .explain")
    by_id(browser, "search-explain").click()
    search_in_page(browser, "office", "4 hits in notes")
    dense = browser.find_element(By.CSS_SELECTOR, "#hits .explain").text
    assert dense.startswith("dense ") and "keyword" not in dense  # dense explains dense only
    Select(by_id(browser, "search-mode")).select_by_value("hybrid")
    search_in_page(browser, "office", "4 hits in notes")
    explained = browser.find_elements(By.CSS_SELECTOR, "#hits .explain")
    assert len(explained) == 4
    assert explained[0].text.startswith("dense #1") or explained[0].text.startswith("dense ")
    assert "keyword" in explained[0].text and "fused" in explained[0].text
    assert_only_own_requests(browser, site)


def test_a_hits_explain_is_shown_as_the_contract_says(browser, site):
    """The rendering, whatever today's service does with `explain`: the page's fetch answers
    as the contract says (keyword null for a hit keyword search did not find)."""
    with_notes(site)
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    browser.execute_script(
        """
        const real = window.fetch;
        window.sentBodies = [];
        window.fetch = async (path, options) => {
          if (!String(path).endsWith("/search")) return real(path, options);
          const body = JSON.parse(options.body);
          window.sentBodies.push({...body});
          delete body.explain;
          const answer = await (await real(path, {...options, body: JSON.stringify(body)})).json();
          answer.hits.forEach((hit, i) => {
            hit.fusion_score = 0.5 - i / 100;
            hit.explain = {dense: {score: hit.score, rank: i + 1},
                           keyword: i ? null : {score: 2.5, rank: 1}, fused: 0.5 - i / 100};
          });
          return new Response(JSON.stringify(answer), {status: 200});
        };
        """
    )
    by_id(browser, "search-explain").click()
    search_in_page(browser, "office", "4 hits in notes")
    assert browser.execute_script("return window.sentBodies[0].explain") is True
    lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#hits .explain")]
    assert lines[0].startswith("dense ") and "keyword 2.500 (rank 1)" in lines[0]
    assert lines[0].endswith("fused 0.5000")
    assert "keyword: no match" in lines[1] and "(rank 2)" in lines[1]
    by_id(browser, "search-explain").click()  # unticked: not sent
    search_in_page(browser, "office", "4 hits in notes")
    assert "explain" not in browser.execute_script("return window.sentBodies[1]")
    shoot(browser, "web-14-explain")


def test_a_pdf_hit_shows_its_page(browser, site, tmp_path):
    from file_samples import pdf

    report = tmp_path / "report.pdf"
    first = "Revenue grew in the third quarter, " + "and costs stayed flat, " * 8
    report.write_bytes(pdf([first, "Parking moves to level two."]))  # past a window
    with KBClient(local(site), retries=0) as client:
        client.create_knowledge_base("reports")
        client.upload_files("reports", [report])
    browser.get(site + "/")
    wait_for(browser, status_says("ready"))
    hit = search_in_page(browser, "Parking moves to level two.", "1 hit in reports")[0]
    assert hit.find_element(By.CLASS_NAME, "page").text == "page 2"
    assert_only_own_requests(browser, site)


def test_files_are_added_picked_or_dropped_with_progress_and_jobs_shown(
    make_app, browser, tmp_path
):
    from file_samples import pdf

    note, report = tmp_path / "note.md", tmp_path / "report.pdf"
    note.write_text("# Bikes\n\nLeave your bike in the courtyard rack.\n")
    report.write_bytes(pdf(["Revenue grew in the third quarter."], title="Q3 report"))
    # One file per request at most before a job: two files go through the 202 job path.
    with serving(make_app(files_job_files=1)) as served, KBClient(served, retries=0) as client:
        client.create_knowledge_base("files")
        site = served.replace("127.0.0.1", HOST)
        browser.get_log("performance")  # from here on
        browser.get(site + "/")
        wait_for(browser, status_says("ready"))
        assert "no jobs yet" in by_id(browser, "jobs-list").text
        picker = by_id(browser, "upload-files")
        picker.send_keys(f"{note}\n{report}")  # the file dialog, as chromedriver fills it
        wait_for(browser, lambda d: "added 2 documents" in by_id(d, "upload-status").text)
        assert by_id(browser, "upload-progress").get_attribute("value") == "1"
        assert client.get_document("files", "report.pdf")["metadata"]["title"] == "Q3 report"
        # The Jobs panel found the job and followed it to its end without being asked.
        job = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs-list li.job-succeeded"),
        )[0]
        bar = job.find_element(By.TAG_NAME, "progress")
        assert bar.get_attribute("value") == bar.get_attribute("max") == "2"
        assert "2 of 2" in job.text
        shoot(browser, "web-7-files-picked")

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
        wait_for(
            browser,
            lambda d: (
                browser.execute_script(
                    "return [...document.querySelectorAll('#docs-list tr')].map(r => r.dataset.id)"
                )
                == ["note.md", "report.pdf", "trains.md"]
            ),
        )

        # A file the service cannot read: its message, next to the drop zone, announced.
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
        assert by_id(browser, "upload-status").get_attribute("role") == "alert"
        assert "photo.png" in by_id(browser, "status").text
        shoot(browser, "web-8-files-dropped")
        assert_only_own_requests(browser, site)


def job_shown(browser, job_id: str) -> dict | None:
    """A job's line in the panel, read in one go (the panel reloads each second)."""
    return browser.execute_script(
        """
        const item = document.querySelector(`#jobs-list li[data-id="${arguments[0]}"]`);
        if (!item) return null;
        const bar = item.querySelector("progress");
        return {text: item.innerText, value: bar.getAttribute("value"),
                max: bar.getAttribute("max")};
        """,
        job_id,
    )


def test_the_jobs_panel_follows_a_running_restore_and_cancels_one(make_app, browser):
    from test_jobs_api import blocking, start

    app = make_app()
    with serving(app) as served:
        release, stop_me = threading.Event(), threading.Event()
        job = start(app, blocking(release))
        site = served.replace("127.0.0.1", HOST)
        browser.get_log("performance")
        browser.get(site + "/")
        wait_for(browser, status_says("ready"))
        # Progress is saved now and then: the panel, reloading each second, shows it.
        shown = wait_for(
            browser, lambda d: (s := job_shown(d, job.id)) and "1 of 3" in s["text"] and s
        )
        assert "restore in kb" in shown["text"] and "running" in shown["text"]
        assert (shown["value"], shown["max"]) == ("1", "3")
        assert "refreshing" in by_id(browser, "jobs-note").text
        shoot(browser, "web-13-jobs")
        release.set()  # the panel sees the end by itself
        shown = wait_for(
            browser, lambda d: (s := job_shown(d, job.id)) and "succeeded" in s["text"] and s
        )
        assert "3 of 3" in shown["text"] and shown["value"] == shown["max"] == "3"
        wait_for(browser, lambda d: by_id(d, "jobs-note").text == "")

        # Cancel by keyboard: the focused button survives the panel's reloads.
        other = start(app, blocking(stop_me))
        by_id(browser, "jobs-refresh").click()
        wait_for(browser, lambda d: job_shown(d, other.id))
        cancel = browser.find_element(
            By.CSS_SELECTOR, f'li[data-id="{other.id}"] button[aria-label^="cancel"]'
        )
        browser.execute_script("arguments[0].focus()", cancel)
        time.sleep(1.5)  # at least one reload
        assert browser.switch_to.active_element == cancel
        cancel.send_keys(Keys.ENTER)
        wait_for(browser, lambda d: "cancelled" in job_shown(d, other.id)["text"])
        assert_only_own_requests(browser, site)
