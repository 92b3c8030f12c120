"""`kubectl mltrl dashboard` in headless Chromium: every page readable at 1280x800 and on a
phone, live without a reload, read-only and on loopback only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import KUBECTL, Process, eventually, free_port

from .browser import DESKTOP, PHONE, Chromium, Page
from .conftest import AUDITOR, PluginSandbox, policy, reconciled, technology


class Dashboard:
    def __init__(self, sandbox: PluginSandbox, workdir: Path, user: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            [str(KUBECTL), "mltrl", "dashboard", "-A", "--port", str(self.port),
             "--context", user],
            workdir / "dashboard.log", env=sandbox.env(),
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def start(self) -> Dashboard:
        self.process.start()
        eventually(self._answers, timeout=60, what=f"the dashboard\n{self.process.output()}")
        return self


@pytest.fixture(scope="module")
def dashboard(fraud_detection_at_7: PluginSandbox, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Dashboard]:
    started = Dashboard(fraud_detection_at_7, tmp_path_factory.mktemp("dashboard"), "carol")
    try:
        yield started.start()
    finally:
        started.process.stop()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    browser = Chromium(tmp_path_factory.mktemp("chromium")).start()
    opened = browser.page()
    try:
        yield opened
    finally:
        opened.close()
        browser.stop()


PAGES = {
    "portfolio": ("/", ["Portfolio:", "fraud-detection", "7 Integrations", "0 First Principles"]),
    "technology": ("/t/payments/fraud-detection",
                   ["fraud-detection", "Next level", "Level 8 Flight-ready", "Reviews",
                    "fraud-detection-to-7", "History", "TRL card: fraud-detection at level 7",
                    "not recorded",
                    # carol may not read the audit record: the history section says so
                    "from status.history (not the audit record)", "mltrl-auditor role"]),
    "card-6": ("/t/payments/fraud-detection?level=6",
               ["TRL card: fraud-detection at level 6 (Application Development)"]),
    "report": ("/report", ["ML maturity report", "ML capacity stage", "payments-ml",
                           "What a cluster cannot observe"]),
}

OVERFLOW = ("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
VISIBLE = """(function(text){
  var walker=document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while(walker.nextNode()){
    var node=walker.currentNode;
    if(node.textContent.indexOf(text)<0) continue;
    var box=node.parentElement.getBoundingClientRect();
    var style=getComputedStyle(node.parentElement);
    if(box.width>0 && box.height>0 && box.left>=0 && box.right<=window.innerWidth+1
       && style.visibility!=='hidden' && style.display!=='none') return true;
  }
  return false;
})"""


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_reads_at_desktop_and_phone_widths(
    dashboard: Dashboard, page: Page, name: str, size: tuple[int, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    path, texts = PAGES[name]
    page.resize(*size)
    page.goto(dashboard.url + path)
    for text in texts:
        assert page.evaluate(f"{VISIBLE}({json.dumps(text)})"), f"{text!r} not visible on {path}"
    assert page.evaluate(OVERFLOW), f"{path} overflows horizontally at {size}"
    shot = tmp_path_factory.mktemp("screens") / f"{name}-{size[0]}x{size[1]}.png"
    assert page.screenshot(shot) == size
    assert shot.stat().st_size > 10_000, "a blank page compresses to almost nothing"


def test_pages_follow_the_cluster_without_a_reload(
    dashboard: Dashboard, page: Page, fraud_detection_at_7: PluginSandbox, namespace: str
) -> None:
    sandbox = fraud_detection_at_7
    page.resize(*DESKTOP)
    page.goto(dashboard.url + "/")
    eventually(lambda: page.evaluate("document.getElementById('live').textContent === 'live'"),
               timeout=30, what="the event stream to connect")
    page.evaluate("window.sameDocument = 'yes'")
    sandbox.apply([policy(namespace), technology(namespace, "newcomer", entryLevel=3)])
    reconciled(sandbox, "newcomer", namespace, 3)
    eventually(lambda: page.evaluate(f"{VISIBLE}('newcomer')"), timeout=60,
               what="the new technology on the open page")
    assert page.evaluate("window.sameDocument") == "yes", "the page reloaded"
    assert page.evaluate("window.mltrlRefreshes") >= 1


def test_the_dashboard_is_read_only_and_loopback_only(dashboard: Dashboard,
                                                      fraud_detection_at_7: PluginSandbox
                                                      ) -> None:
    post = urllib.request.Request(dashboard.url + "/", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=5)
    assert refused.value.code == 405
    rebound = urllib.request.Request(dashboard.url + "/", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as forbidden:
        urllib.request.urlopen(rebound, timeout=5)
    assert forbidden.value.code == 403
    outside = fraud_detection_at_7.plugin("carol", "dashboard", "--address", "0.0.0.0",
                                          check=False)
    assert outside.returncode == 1
    assert "--address 0.0.0.0 is not a loopback address" in outside.stderr


def test_a_missing_technology_page_says_so(dashboard: Dashboard) -> None:
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(dashboard.url + "/t/payments/ghost", timeout=10)
    assert missing.value.code == 404
    body = missing.value.read().decode()
    assert 'mltechnology &quot;ghost&quot; not found in namespace &quot;payments&quot;' in body


def test_an_auditors_dashboard_shows_the_verified_audit_record(
    fraud_detection_at_7: PluginSandbox, tmp_path_factory: pytest.TempPathFactory
) -> None:
    auditors = Dashboard(fraud_detection_at_7, tmp_path_factory.mktemp("auditor"), AUDITOR)
    try:
        auditors.start()

        def history_section() -> str | None:
            with urllib.request.urlopen(auditors.url + "/t/payments/fraud-detection",
                                        timeout=10) as response:
                html = str(response.read().decode())
            return html if "promotion" in html.split("<h2>History</h2>", 1)[-1] else None

        html = eventually(history_section, timeout=60, what="the promotion on the page")
        section = html.split("<h2>History</h2>", 1)[1].split("</section>", 1)[0]
        assert "payments/fraud-detection from the audit record" in section
        assert "Chain verified: every entry matches its hash" in section
        assert "review fraud-detection-to-7" in section and "bob, carol" in section
        assert "status.history" not in section
    finally:
        auditors.process.stop()
