"""Headless Chromium through the docs page (Try it out); the console is in test_console*.py."""

from __future__ import annotations

import json

import pytest
from browsing import HOST, assert_only_own_requests, fill, shoot, wait_for
from selenium.webdriver.common.by import By

from kb_client import KBClient

pytestmark = pytest.mark.browser


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
