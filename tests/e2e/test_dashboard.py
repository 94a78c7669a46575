"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium, fully offline.

Log in with a gateway key, load the list, filter it, open the request that fell back (the cookbook
config with Stability failing) and read its attempts; a generate key never sees another key's
request; the session cookie is HttpOnly and SameSite=Strict; no URL the browser fetched holds a key.
Screenshots go to the test's tmp dir; the admin view also goes to $IMAGEGW_DASHBOARD_SCREENSHOT when
set, which is how docs/dashboard.png is made:

    IMAGEGW_DASHBOARD_SCREENSHOT=docs/dashboard.png .venv/bin/python -m pytest tests/e2e/test_dashboard.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import Emulators, Seed, eventually
from tests.dashboard_client import DashboardClient, generate, keeping_gateway, new_generate_key, origin
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1080",
)

# CI installs Chromium (.ci/run), so there a missing browser fails loudly; elsewhere the test is skipped.
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)",
)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Requests already in the log: two by Alice (one fell back, both kept their image), one by Bob,
    and one by the admin key that failed on every target."""

    gateway: GatewayThread
    seed: Seed
    alice_key: str
    bob_key: str
    alice_ok: str
    alice_fell_back: str
    bob_trace: str


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> Iterator[Scenario]:
    with keeping_gateway(tmp_path_factory.mktemp("dashboard-e2e"), openai_emulator, stability_emulator) as (
        gateway,
        seed,
    ):
        _, alice = new_generate_key(gateway, "alice")
        _, bob = new_generate_key(gateway, "bob")
        run = uuid.uuid4().hex[:8]
        traces = {name: f"{name}-{run}" for name in ("lighthouse", "kraken", "bob-owl")}
        openai_emulator.reset()
        stability_emulator.reset()
        assert (
            generate(
                gateway, alice, seed.config_id, trace_id=traces["lighthouse"], keep=True, prompt="a lighthouse at dusk"
            ).status_code
            == 200
        )
        stability_emulator.inject(Fault.status(500))
        assert (
            generate(
                gateway,
                alice,
                seed.config_id,
                trace_id=traces["kraken"],
                keep=True,
                prompt="Kraken in the milkyway galaxy",
            ).status_code
            == 200
        )
        assert (
            generate(
                gateway, bob, seed.config_id, trace_id=traces["bob-owl"], prompt="an owl reading the logs"
            ).status_code
            == 200
        )
        stability_emulator.inject(Fault.status(503))
        openai_emulator.inject(Fault.status(502))
        assert (
            generate(
                gateway, gateway.admin_key, seed.config_id, trace_id=f"outage-{run}", prompt="both providers down"
            ).status_code
            == 502
        )
        stability_emulator.reset()
        openai_emulator.reset()
        with DashboardClient(gateway) as admin:
            admin.login(gateway.admin_key)
            eventually(lambda: len(admin.logs()) >= 4)
        yield Scenario(gateway, seed, alice, bob, traces["lighthouse"], traces["kraken"], traces["bob-owl"])


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], T], timeout: float = 20) -> T:
    def probe(d: webdriver.Chrome) -> T | bool:
        try:
            return condition(d)
        except StaleElementReferenceException:  # the list re-rendered under us; look again
            return False

    result: T = WebDriverWait(driver, timeout, poll_frequency=0.1).until(probe)  # type: ignore[arg-type]
    return result


def listed_traces(driver: webdriver.Chrome) -> list[str]:
    traces: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('tr.log-row')].map(r => r.dataset.traceId)"
    )
    return traces


def wait_for_list(driver: webdriver.Chrome, expected: list[str]) -> None:
    try:
        wait(
            driver,
            lambda d: listed_traces(d) == expected and "Loading" not in d.find_element(By.ID, "list-status").text,
        )
    except TimeoutException:
        status = driver.find_element(By.ID, "list-status").text, driver.find_element(By.ID, "filter-error").text
        raise AssertionError(f"listed {listed_traces(driver)} ({status}), expected {expected}") from None


def log_in(driver: webdriver.Chrome, gateway: GatewayThread, key: str) -> None:
    driver.get(origin(gateway) + "/dashboard")
    field = wait(
        driver, lambda d: d.find_element(By.ID, "key") if d.find_element(By.ID, "key").is_displayed() else None
    )
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "app-view").is_displayed())


def apply_filters(driver: webdriver.Chrome, **fields: str) -> None:
    driver.find_element(By.ID, "clear-filters").click()
    for name, value in fields.items():
        element = driver.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        elif element.get_attribute("type") == "datetime-local":
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)
    driver.find_element(By.ID, "apply-filters").click()


def open_detail(driver: webdriver.Chrome, trace_id: str) -> Any:
    driver.find_element(By.CSS_SELECTOR, f"tr.log-row[data-trace-id='{trace_id}']").click()
    return wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "tr.detail-row"))


def attempt_rows(detail: Any) -> list[tuple[str, ...]]:
    rows = []
    for row in detail.find_elements(By.CSS_SELECTOR, "tr.attempt"):
        rows.append(
            tuple(
                row.find_element(By.CSS_SELECTOR, f".a-{column}").text
                for column in ("target", "provider", "model", "status")
            )
        )
    return rows


def fetched_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(driver: webdriver.Chrome, path: Path, *, publish: bool = False) -> None:
    # The whole page, details included: a viewport as tall as the document.
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        assert driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.read_bytes().startswith(b"\x89PNG")
    published = os.environ.get("IMAGEGW_DASHBOARD_SCREENSHOT")
    if publish and published:
        shutil.copyfile(path, published)


def test_a_generate_key_logs_in_filters_and_opens_the_request_that_fell_back(
    scenario: Scenario, browser: webdriver.Chrome, tmp_path: Path, emulators: Emulators
) -> None:
    gateway = scenario.gateway
    log_in(browser, gateway, scenario.alice_key)
    wait_for_list(browser, [scenario.alice_fell_back, scenario.alice_ok])  # newest first, Bob's absent
    assert scenario.bob_trace not in browser.page_source

    cookie = browser.get_cookie("imagegw_session")
    assert cookie is not None and cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/dashboard" and cookie["value"] != scenario.alice_key
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: out of the page's reach

    marker = browser.find_element(By.CSS_SELECTOR, f"tr[data-trace-id='{scenario.alice_fell_back}'] .fallback-marker")
    assert "fallback" in marker.text
    assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-trace-id='{scenario.alice_ok}'] .fallback-marker")

    apply_filters(browser, trace_id=scenario.alice_ok)
    wait_for_list(browser, [scenario.alice_ok])
    apply_filters(browser, fallback_used="false")
    wait_for_list(browser, [scenario.alice_ok])
    apply_filters(browser, model="dall-e-3")
    wait_for_list(browser, [scenario.alice_fell_back])
    apply_filters(browser, start_time="2999-01-01T00:00:00")
    wait_for_list(browser, [])
    apply_filters(browser, trace_id=scenario.bob_trace)  # another key's request: nothing, not an error
    wait_for_list(browser, [])
    apply_filters(browser, fallback_used="true")
    wait_for_list(browser, [scenario.alice_fell_back])

    detail = open_detail(browser, scenario.alice_fell_back)
    assert attempt_rows(detail) == [
        ("config.targets[0]", "stability-ai", "stable-diffusion-v1-6", "500"),
        ("config.targets[1]", "openai", "dall-e-3", "200"),
    ]
    assert "config.targets[1]" in detail.text and "Kraken in the milkyway galaxy" in detail.text
    thumbnail = detail.find_element(By.CSS_SELECTOR, "img.thumb.large")
    wait(browser, lambda d: d.execute_script("return arguments[0].naturalWidth", thumbnail) == 1024)

    health = wait(
        browser,
        lambda d: {
            r.get_attribute("data-provider"): r.text
            for r in d.find_elements(By.CSS_SELECTOR, "#health-table tr.health-row")
        },
    )
    assert set(health) == {"stability-ai", "openai"}
    assert "0%" in health["stability-ai"] and "100%" in health["openai"]
    assert not browser.find_element(By.ID, "breakers").is_displayed()  # breaker state is for admin keys
    screenshot(browser, tmp_path / "dashboard-generate-key.png")

    urls = fetched_urls(browser)
    assert any("/dashboard/api/logs" in url for url in urls)
    for url in [*urls, browser.current_url]:
        assert scenario.alice_key not in url and scenario.alice_key[4:20] not in url

    browser.find_element(By.ID, "logout").click()
    wait(browser, lambda d: d.find_element(By.ID, "login-view").is_displayed())
    assert browser.get_cookie("imagegw_session") is None
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.ID, "login-view").is_displayed())
    assert not browser.find_element(By.ID, "app-view").is_displayed()


def test_an_admin_sees_every_key_and_a_wrong_key_is_turned_away(
    scenario: Scenario, browser: webdriver.Chrome, tmp_path: Path, emulators: Emulators
) -> None:
    gateway = scenario.gateway
    browser.get(origin(gateway) + "/dashboard")
    wait(browser, lambda d: d.find_element(By.ID, "key").is_displayed())
    browser.find_element(By.ID, "key").send_keys("igw_" + "not-a-real-key-" * 3)
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait(browser, lambda d: "not accepted" in d.find_element(By.ID, "login-error").text)
    assert browser.get_cookie("imagegw_session") is None

    log_in(browser, gateway, gateway.admin_key)
    wait(browser, lambda d: {scenario.alice_ok, scenario.alice_fell_back, scenario.bob_trace} <= set(listed_traces(d)))
    assert "admin" in browser.find_element(By.ID, "who").text
    breakers = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#breaker-table tr.breaker-row"))
    assert {row.text.split()[0] for row in breakers} >= {"stability-ai", "openai"}
    open_detail(browser, scenario.alice_fell_back)
    wait(
        browser,
        lambda d: all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
            for img in d.find_elements(By.CSS_SELECTOR, "img.thumb")
        ),
    )
    screenshot(browser, tmp_path / "dashboard-admin.png", publish=True)
    for url in [*fetched_urls(browser), browser.current_url]:
        assert gateway.admin_key not in url
