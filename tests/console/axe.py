"""axe-core, the accessibility engine, for the console's tests (test-only: never served).

Fetched once from the npm registry at a pinned version into the download cache (beside
Kafka's jars) and checked against its SHA-256; a missing network or a changed file fails
the test loudly.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.request
from typing import Any

from playwright.sync_api import Page

from tradex.infra.local_kafka import cache_dir

VERSION = "4.14.1"
URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"
SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
# WCAG 2.1 A and AA: labels and names, contrast, keyboard traps, landmarks' basics
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def source() -> str:
    path = cache_dir() / f"axe-core-{VERSION}.min.js"
    if not path.exists():
        with urllib.request.urlopen(URL, timeout=60) as answer:
            packed = answer.read()
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None, f"{URL} has no package/axe.min.js"
            text = member.read()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(text)
        tmp.replace(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SHA256, f"{path}: sha256 {digest}, expected {SHA256} (axe-core {VERSION})"
    return data.decode()


def violations(page: Page, exclude: list[str] | None = None) -> list[dict[str, Any]]:
    """axe's WCAG A/AA violations of the page as it is now (``exclude``: CSS selectors)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source())  # evaluated by the test driver: the page's CSP still holds
    context = {"exclude": [[s] for s in (exclude or [])]} if exclude else None
    found: list[dict[str, Any]] = page.evaluate(
        "([context, tags]) => axe.run(context || document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']}).then(r => r.violations.map(v => ({id: v.id,"
        " impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')"
        " + ': ' + n.failureSummary)})))",
        [context, TAGS],
    )
    return found


def report(found: list[dict[str, Any]]) -> str:
    return json.dumps(found, indent=1)
