"""Headless Chromium for the browser tests: the driver, the site it visits, and small helpers.

The fixtures reach every test module through tests/integration/conftest.py."""

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

from live_server import serving

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
