"""The simulator page in a real headless Chromium (Selenium): send a message, watch the stream
grow and finish, click a card button and see the card update in place, take a screenshot.

Needs Debian's ``chromium`` and ``chromium-driver``. Never skipped when CI=true (it fails there
instead); locally it skips naming what to install.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from wecom_actors.demo import run_chat
from wecom_actors.handlers.loading import load_handler

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install chromium chromium-driver (and pip install selenium)"


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(Path(p).name))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    if missing:
        message = f"the browser tests need {', '.join(missing)}: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never looks for (or downloads) anything.
    service = Service(executable_path=shutil.which("chromedriver") or CHROMEDRIVER)
    return webdriver.Chrome(service=service, options=options)


def _drive(url: str, tmp_path: Path) -> dict[str, Any]:
    """Everything the browser does (blocking Selenium calls, run in a worker thread)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen: dict[str, Any] = {}
    driver = _driver(tmp_path / "profile")
    try:
        wait = WebDriverWait(driver, 15, poll_frequency=0.02)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-subscribed") == "true")

        driver.find_element(By.ID, "new-user").send_keys("ann")
        driver.find_element(By.CSS_SELECTOR, "#new-chat button").click()
        welcome = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot.text .bubble"))
        seen["welcome"] = welcome[0].text

        box = driver.find_element(By.ID, "composer-input")
        box.send_keys("/slow 2 one two three four five six seven eight")
        driver.find_element(By.ID, "send-btn").click()
        growing: list[str] = []

        def finished(d: Any) -> bool:
            last = d.execute_script(
                "const b = [...document.querySelectorAll('.msg.bot.stream')].pop();"
                "return b ? [b.querySelector('.bubble').textContent, b.dataset.finished] : null;"
            )
            if last is None:
                return False
            if not growing or growing[-1] != last[0]:
                growing.append(last[0])
            return last[1] == "true"

        wait.until(finished)
        seen["stream"] = growing

        box.send_keys("/card")
        driver.find_element(By.ID, "send-btn").click()
        button = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card .buttons button"))[0]
        seen["card_before"] = driver.find_element(By.CSS_SELECTOR, ".card .title").text
        seen["clicked"] = button.get_attribute("data-key")
        button.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".card .updated"))
        seen["cards"] = len(driver.find_elements(By.CSS_SELECTOR, ".card"))
        seen["card_after"] = driver.find_element(By.CSS_SELECTOR, ".card .title").text

        driver.find_element(By.ID, "toggle-frames").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#frame-list li")) > 5)
        seen["frames"] = len(driver.find_elements(By.CSS_SELECTOR, "#frame-list li"))
        time.sleep(0.2)  # let the last layout settle before the screenshot (cosmetic only)
        shot = tmp_path / "simulator.png"
        driver.save_screenshot(str(shot))
        seen["screenshot"] = shot
    finally:
        driver.quit()
    return seen


@pytest.mark.parametrize("mode", ["long-connection", "webhook"])
async def test_chat_in_a_real_browser(mode: str, tmp_path: Path) -> None:
    _need_browser()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: run_chat(
            load_handler("echo"), mode=mode, print_fn=lambda _line: None, task_status=task_status))
        seen = await trio.to_thread.run_sync(_drive, url + "/", tmp_path)
        nursery.cancel_scope.cancel()
    assert seen["welcome"]
    stream = seen["stream"]
    assert stream[-1] == "one two three four five six seven eight"
    # the bubble grew in place before it finished (webhook: at the fake's 1 s refresh polls)
    assert len(stream) >= (3 if mode == "long-connection" else 2), stream
    assert all(stream[-1].startswith(s) for s in stream if s)
    assert seen["card_before"] == "Echo card"
    assert seen["cards"] == 1  # updated in place, not a second card
    assert seen["card_after"] == f"You clicked {seen['clicked']}"
    assert seen["frames"] > 5
    png = seen["screenshot"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    print(f"screenshot: {seen['screenshot']}")
