"""The web console (`/ui`) in a real browser: Debian's headless `chromium`
driven by Selenium through Debian's `chromedriver`, against a real
`eric serve`.

Python and Selenium rather than a Rust crate speaking the DevTools
protocol: this suite already starts real servers (`servers.py`) and mints
tokens with `eric token`, and Selenium's explicit waits
(`WebDriverWait`) are the "await the signal under a deadline" the project
wants, with no protocol code of our own to keep. The driver is the
distribution's, named by path, so Selenium Manager never downloads one.

Each test loads the console, makes a channel and a listener through the
forms (one submitted with the keyboard), opens the listener's stream in the
viewer, publishes through the form and waits for the event in the live
view; it checks that a refused request shows eric's `code: message`, that
the page made no CSP violation or script error, and that it fits a phone's
width. With authentication on, the console asks for a token first. One
more test runs the console's SSE reader (chunks cut inside a CRLF and a
value, eric's notices) and its metrics parser in the page itself. The
screenshots are CI artefacts: `$ERIC_ARTIFACTS`, else `target/artifacts/`
(`console.png`, `console-auth.png`, `console-phone.png`).

Skipped, with a message, where chromium, chromedriver or Selenium is missing
(`scripts/install-test-deps` installs all three)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from servers import REPO, mint, unique

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="skipped: Selenium is not installed (scripts/install-test-deps)"
)
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: Longest wait for anything the page should show; a healthy run takes a
#: fraction of a second per step.
DEADLINE = 20.0


def _which(env: str, name: str, fallback: str) -> str | None:
    path = os.environ.get(env) or shutil.which(name) or fallback
    return path if Path(path).exists() else None


CHROMIUM = _which("ERIC_TEST_CHROMIUM", "chromium", "/usr/bin/chromium")
CHROMEDRIVER = _which("ERIC_TEST_CHROMEDRIVER", "chromedriver", "/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="skipped: no chromium or chromedriver (install Debian's `chromium` and "
    "`chromium-driver`, e.g. scripts/install-test-deps, or set ERIC_TEST_CHROMIUM "
    "and ERIC_TEST_CHROMEDRIVER)",
)


def artifacts() -> Path:
    """Where screenshots go: `$ERIC_ARTIFACTS`, else `target/artifacts/`."""
    directory = Path(os.environ.get("ERIC_ARTIFACTS") or REPO / "target" / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1280,1800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, what: str, condition):
    """`condition`'s first truthy value within the deadline."""
    try:
        # The lists are redrawn every few seconds: an element found just
        # before a redraw is looked for again.
        return WebDriverWait(
            driver, DEADLINE, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        path = artifacts() / "console-failed.png"
        driver.save_screenshot(str(path))
        errors = driver.find_element(By.ID, "errors").text
        raise AssertionError(
            f"timed out waiting for {what}; errors shown: {errors!r}; screenshot: {path}"
        ) from None


def fill(driver, field: str, value: str) -> None:
    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(value)


def text_of(driver, element_id: str, wanted: str):
    return lambda d: wanted in d.find_element(By.ID, element_id).text


def error_shown(driver, prefix: str):
    """The first error that starts with `prefix` (eric's `code: `)."""

    def find(d):
        for item in d.find_elements(By.CSS_SELECTOR, "#errors .error"):
            if item.text.startswith(prefix):
                return item.text
        return None

    return find


def listener_state(channel: str, listener: str, wanted: str):
    """The listener's row, once it shows `wanted` (its text then)."""
    selector = f'article[data-channel="{channel}"] tr[data-listener="{listener}"]'

    def find(d):
        for row in d.find_elements(By.CSS_SELECTOR, selector):
            text = row.text
            if wanted in text:
                return text
        return None

    return find


def event_row(kind: str, payload: str):
    def find(d):
        for row in d.find_elements(By.CSS_SELECTOR, "#events tr.event"):
            cells = row.find_elements(By.TAG_NAME, "td")
            if cells[2].text == kind and payload in cells[4].text:
                return [cell.text for cell in cells]
        return None

    return find


def drive_the_console(driver) -> None:
    """The walk every variant makes, once the page can call the API."""
    channel, listener = unique("ui"), unique("l")

    # A refused request: eric's code and message, as eric sent them.
    fill(driver, "channel-id", "has space")
    driver.find_element(By.ID, "channel-create").click()
    shown = wait(driver, "the invalid_id error", error_shown(driver, "invalid_id: "))
    assert len(shown) > len("invalid_id: "), shown

    # The channel, submitted from the keyboard (Enter in its field).
    fill(driver, "channel-id", channel)
    driver.find_element(By.ID, "channel-id").send_keys(Keys.ENTER)
    wait(
        driver,
        "the channel in the list",
        ec.presence_of_element_located((By.CSS_SELECTOR, f'article[data-channel="{channel}"]')),
    )
    assert not driver.find_elements(By.CSS_SELECTOR, "#errors .error"), "a success clears errors"

    fill(driver, "listener-channel", channel)
    fill(driver, "listener-id", listener)
    driver.find_element(By.ID, "listener-create").click()
    wait(driver, "the listener, stopped", listener_state(channel, listener, "stopped"))

    # Its stream in the viewer; opening it starts it.
    fill(driver, "stream-channel", channel)
    fill(driver, "stream-listener", listener)
    driver.find_element(By.ID, "stream-open").click()
    wait(driver, "the stream to open", text_of(driver, "stream-status", "Streaming listener"))
    wait(driver, "the listener, running", listener_state(channel, listener, "running"))

    # A dispatch through the form, and then a broadcast.
    fill(driver, "publish-channel", channel)
    fill(driver, "publish-listener", listener)
    fill(driver, "publish-type", "greet")
    fill(driver, "publish-topic", "console.test")
    fill(driver, "publish-payload", '{"hello": "from the console"}')
    driver.find_element(By.ID, "publish-send").click()
    cells = wait(driver, "the dispatched event", event_row("greet", "from the console"))
    _, event_id, _, topic, payload = cells
    assert event_id.isdigit(), cells
    assert topic == "console.test", cells
    assert payload == '{"hello":"from the console"}', cells
    wait(driver, "the dispatch's answer", text_of(driver, "publish-result", "dispatched to"))

    # The channel's own stream (watch), from its button in the list,
    # pressed with the keyboard; then a broadcast.
    watch = f'article[data-channel="{channel}"] button[data-key="watch {channel}"]'
    wait(driver, "the watch button", lambda d: press(d.find_element(By.CSS_SELECTOR, watch)))
    opened = f"Streaming channel {channel}"
    wait(driver, "the watch to open", text_of(driver, "stream-status", opened))
    fill(driver, "publish-listener", "")
    fill(driver, "publish-type", "news")
    fill(driver, "publish-topic", "")
    fill(driver, "publish-payload", "[1, 2, 3]")
    driver.find_element(By.ID, "publish-send").click()
    wait(driver, "the broadcast event", event_row("news", "[1,2,3]"))
    # The listener and the watch's own.
    answer = "broadcast to 2 listeners"
    wait(driver, "the broadcast's answer", text_of(driver, "publish-result", answer))

    # A payload that is no JSON never leaves the page.
    fill(driver, "publish-payload", "{not json")
    driver.find_element(By.ID, "publish-send").click()
    wait(driver, "the JSON error", error_shown(driver, "invalid_json: "))

    # The node's figures came from /metrics.
    wait(driver, "the node's figures", lambda d: d.find_element(By.ID, "streams").text.isdigit())
    assert d_text(driver, "health") == "ok"
    assert d_text(driver, "readiness") == "ready"


def press(button) -> bool:
    """Presses `button` from the keyboard: focus, then Enter."""
    button.send_keys(Keys.ENTER)
    return True


def d_text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def assert_no_script_errors(driver) -> None:
    """No CSP violation and no uncaught error in the page's console (the
    refused requests the test provoked log as failed loads, allowed)."""
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        assert "Content Security Policy" not in message, message
        assert "Uncaught" not in message, message


def test_the_console_creates_publishes_and_streams(browser, memory_node):
    browser.get(f"http://{memory_node.addr}/ui")
    wait(browser, "the channel list", text_of(browser, "channels-status", "channel"))
    assert browser.title == "eric console"
    drive_the_console(browser)
    browser.save_screenshot(str(artifacts() / "console.png"))
    assert_no_script_errors(browser)

    # A phone's width: everything fits, no sideways scrolling of the page.
    browser.set_window_size(375, 812)
    wait(
        browser,
        "the page to fit 375 px",
        lambda d: d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ),
    )
    browser.save_screenshot(str(artifacts() / "console-phone.png"))


def test_with_authentication_the_console_asks_for_a_token(browser, jwt_node):
    browser.get(f"http://{jwt_node.addr}/ui")
    wait(
        browser,
        "the token form",
        ec.visibility_of_element_located((By.ID, "token-form")),
    )
    wait(browser, "the refusal", error_shown(browser, "unauthorized: "))

    # A token the node does not know: refused, and asked for again.
    fill(browser, "token-input", "not-a-token-of-this-node")
    browser.find_element(By.ID, "token-submit").click()
    wait(browser, "the token form again", ec.visibility_of_element_located((By.ID, "token-form")))
    wait(browser, "the refusal", error_shown(browser, "unauthorized: "))

    fill(browser, "token-input", mint("--admin"))
    browser.find_element(By.ID, "token-input").send_keys(Keys.ENTER)
    wait(browser, "the channel list", text_of(browser, "channels-status", "channel"))
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    drive_the_console(browser)

    # Kept for the session: a reload asks for nothing.
    browser.refresh()
    wait(browser, "the channel list after a reload", text_of(browser, "channels-status", "channel"))
    assert not browser.find_element(By.ID, "token-form").is_displayed()
    browser.save_screenshot(str(artifacts() / "console-auth.png"))
    assert_no_script_errors(browser)


#: Run in the page: the console's SSE reader over chunks cut at awkward
#: places (inside a CRLF, inside a JSON value), and its metrics parser.
PARSERS = r"""
const done = arguments[arguments.length - 1];
(async () => {
  const { Stream } = await import("/ui/stream.js");
  const { parse, Sampler } = await import("/ui/metrics.js");
  const chunks = [
    "retry: 7000\n: connected\n\nid: 1\r\nevent: greet\r\ntopic: a.b\r\ndata: {\"a\":",
    "1}\r",
    "\n\r\nid:2\ndata: x\ndata:y\n\n",
    "event: eric-gap\ndata: {\"after\":1}\n\n",
    "event: eric-end\ndata: {\"reason\":\"stopped\"}\n\nid: 9\ndata: after the end\n\n",
  ];
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  const seen = { events: [], notices: [] };
  // The reader without a connection: the constructor would fetch.
  const stream = Object.create(Stream.prototype);
  Object.assign(stream, {
    lastId: null,
    retryMs: 1000,
    handlers: {
      onEvent: (e) => seen.events.push(e),
      onNotice: (text) => seen.notices.push(text),
    },
  });
  seen.ended = await stream.read(body);
  seen.lastId = stream.lastId;
  seen.retryMs = stream.retryMs;
  const text = [
    "# TYPE eric_queue_depth gauge",
    'eric_queue_depth{channel="a b"} 3',
    'eric_queue_depth{channel="c}"} 4',
    "eric_sse_streams 2",
    "eric_messages_dispatched_total 10",
    "eric_messages_delivered_total 4",
    "# EOF",
  ].join("\n");
  const sums = parse(text);
  const sampler = new Sampler();
  sampler.sample(sums, 1000);
  const later = parse(text.replace("dispatched_total 10", "dispatched_total 30"));
  const figures = sampler.sample(later, 3000);
  seen.metrics = { depth: sums.get("eric_queue_depth"), figures };
  done(seen);
})().catch((e) => done({ error: String(e && e.stack || e) }));
"""


def test_the_consoles_parsers_in_the_browser(browser, memory_node):
    browser.get(f"http://{memory_node.addr}/ui")
    browser.set_script_timeout(DEADLINE)
    seen = browser.execute_async_script(PARSERS)
    assert "error" not in seen, seen.get("error")
    assert seen["events"] == [
        {"id": "1", "type": "greet", "topic": "a.b", "data": '{"a":1}'},
        {"id": "2", "type": "message", "topic": None, "data": "x\ny"},
    ]
    assert seen["notices"] == ["messages after 1 were lost (eric-gap)"]
    assert seen["ended"] == "stopped"
    # Notices carry no id: the last one is the last message's.
    assert seen["lastId"] == "2"
    assert seen["retryMs"] == 7000
    metrics = seen["metrics"]
    assert metrics["depth"] == 7
    figures = metrics["figures"]
    assert figures["rate"] == 10  # (30 - 10) messages in 2 s
    assert figures["delivered"] == 0
    assert figures["streams"] == 2 and figures["depth"] == 7
