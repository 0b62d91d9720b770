"""The console's files as the API serves them: every module resolves, headers are strict.

Fast and browserless; tests/console drives the console itself in Chromium.
"""

from __future__ import annotations

import json
import re

from starlette.applications import Starlette
from starlette.testclient import TestClient

from tradex import console

STATIC = console.STATIC_DIR
IMPORT = re.compile(
    r"""(?:^|[;\s}])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)"""
)


def import_map() -> dict[str, str]:
    page = (STATIC / "index.html").read_text()
    found = re.search(r'<script type="importmap">(.*?)</script>', page, flags=re.S)
    assert found, "index.html has no import map"
    imports: dict[str, str] = json.loads(found.group(1))["imports"]
    return imports


def client() -> TestClient:
    return TestClient(Starlette(routes=console.routes()))


def test_every_import_of_every_module_resolves_to_a_file() -> None:
    names = import_map()
    for target in names.values():
        assert (STATIC / target).is_file(), f"import map names a missing file: {target}"
    modules = [p for p in STATIC.rglob("*.js") if "vendor" not in p.parts]
    assert (STATIC / "app.js") in modules
    for module in modules:
        for groups in IMPORT.findall(module.read_text()):
            spec = groups[0] or groups[1]
            if spec.startswith("."):
                resolved = (module.parent / spec).resolve()
                assert resolved.is_file(), f"{module.relative_to(STATIC)} imports missing {spec}"
            else:
                assert spec in names, (
                    f"{module.relative_to(STATIC)} imports {spec}, not in the import map"
                )


def test_the_console_is_served_with_strict_headers_and_revalidates() -> None:
    c = client()
    assert c.get("/", follow_redirects=False).headers["location"] == "/console/"
    page = c.get("/console/")
    assert page.status_code == 200 and "importmap" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-cache"
    assert c.get("/console/", headers={"if-none-match": page.headers["etag"]}).status_code == 304
    module = c.get("/console/app.js")
    assert module.headers["content-type"].startswith("text/javascript")
    assert c.get("/console/no-such.js").status_code == 404
    assert c.get("/console/../pyproject.toml").status_code == 404


def test_vendored_code_carries_its_licences() -> None:
    licences = STATIC / "vendor" / "licenses"
    for name in ("preact-LICENSE", "htm-LICENSE", "lightweight-charts-LICENSE"):
        assert (licences / name).stat().st_size > 500, name
    assert "TradingView" in (STATIC / "vendor" / "lightweight-charts.mjs").read_text()[:400]
