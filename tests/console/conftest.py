"""The console in a real browser: one seeded exchange and one Chromium per pytest worker.

    def test_x(console: Console, page_as: PageAs) -> None:
        page = page_as("alice", "trade/BTCUSD")     # a new browser context, logged in
        expect(page.get_by_role("table", name="Order book")).to_be_visible()

- ``console`` (session): the exchange of tests/queries/exchange.py (every stage and
  ``tradex run api``, which serves the console at /console/) on its own topic prefix and
  database, seeded by tests/console/seed.py: users ``admin``, ``operator`` (admin and
  trader), ``auditor``, ``alice`` and ``bob`` (traders with deposits), BTCUSD and ETHUSD
  with a book each and one BTCUSD trade, a pending withdrawal of bob's.
- ``browser`` (session): Playwright driving Debian's /usr/bin/chromium (never a
  downloaded browser).
- ``page_as(user, route)`` (per test): a fresh context (UTC, en-US, a fixed viewport), the
  user's session (a seeded user's name, or a ``ConsoleUser`` such as ``seed.new_trader``
  makes) put into sessionStorage (``None``: logged out), the page at
  ``#/<route>`` (``route=None``: not navigated, e.g. to route its WebSocket first; then
  ``console.goto(page, route)``). Every uncaught JavaScript error and every
  ``console.error`` of its pages fails the test (``page_errors.allow(regex)`` for one that
  is expected); a failed test leaves a screenshot of each page in tests/console/output/.
- ``golden(page, name, mask=[...])``: the page against tests/console/golden/<name>.png
  (tests/console/golden.py; ``./dev golden`` rewrites them).

The golden tests (test_golden*.py) run first, so they see the seeded state as it was made:
the other tests add their own users, orders and instruments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.console.golden import GOLDEN_DIR, OUTPUT_DIR, compare
from tests.console.seed import ConsoleUser, seed
from tests.queries.exchange import Exchange, start
from tradex.infra.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
# the flags this machine needs (no sandbox as root, no GPU, no calls to Google's services)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 15_000  # Playwright's waits (a stage answers in ms; a loaded machine is slower)
TEST_TIMEOUT_S = 600  # pytest-timeout's, set-up included (the repo's default: 300)
SESSION_KEY = "tradex.console.session"  # static/lib/api.js keeps the session there
# the browser's own line for an HTTP error answer, which the views show themselves
NETWORK_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of")
expect.set_options(timeout=TIMEOUT_MS)  # expect()'s own waits (5 s by default)


@dataclasses.dataclass
class Console:
    exchange: Exchange
    users: dict[str, ConsoleUser]

    @property
    def url(self) -> str:
        return f"{self.exchange.url}/console/"

    def goto(self, page: Page, route: str) -> None:
        page.goto(f"{self.url}#/{route}")

    def session(self, user: str | ConsoleUser) -> dict[str, Any]:
        """What static/lib/api.js keeps after a login (expiresIn in place of expiresAt)."""
        if isinstance(user, str):
            user = self.users[user]
        tokens = user.tokens(self.exchange)
        with self.exchange.client(tokens["accessToken"]) as http:
            me = http.get("/tradex/v1/me")
        assert me.status_code == 200, me.text
        return {"user": me.json(), "accessToken": tokens["accessToken"],
                "refreshToken": tokens["refreshToken"], "expiresIn": tokens["expiresIn"]}  # fmt: skip


class PageErrors:
    """Uncaught errors and console.error lines of a test's pages."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.allowed: list[re.Pattern[str]] = [NETWORK_ERROR]

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.found.append(f"uncaught: {error}"))
        page.on("console", lambda message: self._console(message.type, message.text))

    def _console(self, kind: str, text: str) -> None:
        if kind == "error":
            self.found.append(f"console.error: {text}")

    def unexpected(self) -> list[str]:
        """Every uncaught error; the console.error lines no pattern allows."""
        return [e for e in self.found if e.startswith("uncaught") or
                not any(p.search(e.removeprefix("console.error: ")) for p in self.allowed)]  # fmt: skip


PageAs = Callable[..., Page]
Golden = Callable[..., None]


@pytest.fixture(scope="package")
def console(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with contextlib.contextmanager(start)(stack, tmp_path_factory.mktemp("console")) as exchange:
        yield Console(exchange, seed(exchange))


@pytest.fixture(scope="package")
def browser(console: Console) -> Iterator[Browser]:
    """Chromium for this worker (after the exchange: Playwright's sync API keeps an event
    loop, and the exchange's set-up and tear-down run asyncio.run outside it). Package
    scope: both end with the console's tests, so the worker's later tests (asyncio.run)
    never meet Playwright's running loop."""
    if not CHROMIUM.exists():
        pytest.fail(f"no {CHROMIUM}: scripts/bootstrap.sh installs Debian's chromium",
                    pytrace=False)  # fmt: skip
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    return report


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page_as(
    browser: Browser, console: Console, page_errors: PageErrors, request: pytest.FixtureRequest
) -> Iterator[PageAs]:
    contexts: list[BrowserContext] = []

    def open_as(user: str | ConsoleUser | None, route: str | None = "markets") -> Page:
        context = browser.new_context(
            viewport=VIEWPORT, locale="en-US", timezone_id="UTC", device_scale_factor=1,
            reduced_motion="reduce", color_scheme="dark",
        )  # fmt: skip
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        if user is not None:
            context.add_init_script(_seed_session_script(console.session(user)))
        page = context.new_page()
        page_errors.watch(page)
        if route is not None:
            console.goto(page, route)
        return page

    yield open_as
    try:
        if request.node.stash.get(_failed, False):
            OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
            for i, context in enumerate(contexts):
                for j, page in enumerate(context.pages):
                    page.screenshot(path=OUTPUT_DIR / f"{request.node.name}-{i}-{j}.png")
    finally:
        for context in contexts:
            context.close()
    unexpected = page_errors.unexpected()
    if unexpected:
        pytest.fail("errors in the page:\n" + "\n".join(unexpected), pytrace=False)


def _seed_session_script(session: dict[str, Any]) -> str:
    """Puts the session into the context's sessionStorage once (a later logout stays)."""
    return f"""(() => {{
      if (!location.protocol.startsWith('http') || sessionStorage.getItem('tradex.test.seeded')) return;
      const s = {json.dumps(session)};
      s.expiresAt = Date.now() + s.expiresIn * 1000;
      delete s.expiresIn;
      sessionStorage.setItem('tradex.test.seeded', '1');
      sessionStorage.setItem({json.dumps(SESSION_KEY)}, JSON.stringify(s));
    }})();"""


def login_ui(page: Page, user: ConsoleUser) -> None:
    """Logs in through the login form (the page at #/login)."""
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture
def golden() -> Golden:
    def check(page: Page, name: str, mask: Sequence[Locator] = (), full_page: bool = True) -> None:
        page.wait_for_load_state("networkidle")
        page.evaluate("document.fonts.ready.then(() => true)")
        _wait_layout_settled(page)
        png = page.screenshot(full_page=full_page, animations="disabled", caret="hide",
                              mask=list(mask), mask_color="#ff00ff", scale="css")  # fmt: skip
        problem = compare(png, GOLDEN_DIR / f"{name}.png")
        if problem:
            pytest.fail(problem, pytrace=False)

    return check


# every element's box, rounded (a chart's own insides apart: its box is enough): the same
# twice in a row = the layout has settled (charts size themselves to their boxes once the
# tables beside them have their rows)
_LAYOUT = """() => Array.from(document.querySelectorAll('body *:not([role=img] *)'), (e) => {
  const r = e.getBoundingClientRect();
  return [r.x, r.y, r.width, r.height].map(Math.round).join(',');
}).join(';')"""
LAYOUT_SETTLE_MS = 500
LAYOUT_TRIES_MAX = 20


def _wait_layout_settled(page: Page) -> None:
    """Until the layout is the same twice in a row (at most LAYOUT_TRIES_MAX looks: then
    the comparison says what still moves)."""
    last = page.evaluate(_LAYOUT)
    for _ in range(LAYOUT_TRIES_MAX):
        page.wait_for_timeout(LAYOUT_SETTLE_MS)
        now = page.evaluate(_LAYOUT)
        if now == last:
            return
        last = now


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The golden tests first among the console's (in place: others' order stays); the
    first test of a worker also starts the exchange (minutes on a loaded machine)."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if here in item.path.parents]
    mine = [items[i] for i in slots]
    for item in mine:
        item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))
    mine.sort(key=lambda item: not item.path.name.startswith("test_golden"))
    for slot, item in zip(slots, mine, strict=True):
        items[slot] = item
