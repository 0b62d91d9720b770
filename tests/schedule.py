"""How `./dev test` spreads the suite over its xdist workers (``--dist loadscope``).

Unit of work: a test module, or a whole directory whose conftest holds a session (or package) fixture
(an exchange built once per run and read by all its tests), so that fixture is built once.

Order: longest unit first, by the seconds each module took in a recorded run
(:data:`MODULE_SECONDS_PATH`; a module not in it counts :data:`unknown_module_s`), so the
run ends on short units and both workers finish together (xdist's own order is "most
tests first", which left a 45 s one-test module or a directory with one slow fixture for
the end). A worker gets its next unit only when its current one is down to its last test
(xdist's own threshold is two): a worker never holds a queued unit while the other
one runs out of work. (It cannot be zero: a worker runs a test only once it knows the
next one, for the fixtures' teardown.)

Refresh the record after adding or slowing tests: `./dev test --record-module-seconds`
(or ``pytest -n 2 --dist loadscope --record-module-seconds``, on any subset: it merges
and drops the modules that are gone). The figures are relative shares; a loaded machine
scales them all alike.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

MODULE_SECONDS_PATH = Path(__file__).parent / "module_seconds.json"
unknown_module_s = 60.0  # a new module starts early rather than end the run
pending_tests_max = 1  # a worker with more pending tests than this gets no new unit


def shared_fixture_dirs(tests_dir: Path) -> tuple[str, ...]:
    """Test directories whose conftest holds a session or package fixture (one set-up for
    the directory: one unit of work), as node id prefixes."""
    root = tests_dir.parent
    return tuple(
        conftest.parent.relative_to(root).as_posix()
        for conftest in sorted(tests_dir.rglob("conftest.py"))
        if conftest.parent != tests_dir
        and any(f'scope="{scope}"' in conftest.read_text() for scope in ("session", "package"))
    )


def unit_of(nodeid: str, shared: Iterable[str]) -> str:
    """The unit of work of a test: its shared-fixture directory, else its module."""
    path = nodeid.split("::", 1)[0]
    for directory in shared:
        if path.startswith(directory + "/"):
            return directory
    return path


def load_module_seconds(path: Path = MODULE_SECONDS_PATH) -> dict[str, float]:
    if not path.exists():
        return {}
    seconds = json.loads(path.read_text())
    assert isinstance(seconds, dict), path
    for module, s in seconds.items():
        assert module.endswith(".py"), (path, module)
        assert isinstance(s, int | float), (path, module, s)
        assert s >= 0, (path, module, s)
    return seconds


def unit_seconds(
    modules_by_unit: dict[str, set[str]], module_seconds: dict[str, float]
) -> dict[str, float]:
    """Each unit's expected seconds: the sum of its modules' (unknown ones count
    :data:`unknown_module_s`)."""
    return {
        unit: sum(module_seconds.get(module, unknown_module_s) for module in modules)
        for unit, modules in modules_by_unit.items()
    }


def longest_first(work: dict[str, Any], seconds: dict[str, float]) -> OrderedDict[str, Any]:
    """``work`` (unit → its tests) reordered by decreasing expected seconds; ties keep
    their order (the collection's)."""
    order = sorted(work, key=lambda unit: -seconds[unit])
    assert len(order) == len(work)
    return OrderedDict((unit, work[unit]) for unit in order)


def make_scheduler(
    config: pytest.Config, log: Any, module_seconds: dict[str, float] | None = None
) -> Any:
    """The xdist scheduler of ``--dist loadscope`` (None for any other mode); the modules'
    seconds default to the record's."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    shared = shared_fixture_dirs(Path(str(config.rootpath)) / "tests")
    if module_seconds is None:
        module_seconds = load_module_seconds()

    class LongestFirstScheduling(LoadScopeScheduling):  # type: ignore[misc]
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid, shared)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the first assignment: the whole collection is queued
                modules: dict[str, set[str]] = {}
                for unit, tests in self.workqueue.items():
                    modules[unit] = {nodeid.split("::", 1)[0] for nodeid in tests}
                expected_s = unit_seconds(modules, module_seconds)
                self.workqueue = longest_first(self.workqueue, expected_s)
                self.ordered = True
            super()._assign_work_unit(node)

        def _reschedule(self, node: Any) -> None:
            if node.shutting_down:
                return
            if self.workqueue and self._pending_of(self.assigned_work[node]) > pending_tests_max:
                return
            super()._reschedule(node)

    return LongestFirstScheduling(config, log)


class ModuleSecondsRecorder:
    """``--record-module-seconds``: sums each module's setup + call + teardown seconds
    (the reports reach the xdist controller too) and merges them into the record."""

    def __init__(self, path: Path = MODULE_SECONDS_PATH) -> None:
        self.path = path
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.split("::", 1)[0]
        self.seconds[module] = self.seconds.get(module, 0.0) + report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller writes
        root = Path(str(session.config.rootpath))
        merged = {**load_module_seconds(self.path), **self.seconds}
        kept = {m: round(s, 1) for m, s in sorted(merged.items()) if (root / m).exists()}
        self.path.write_text(json.dumps(kept, indent=1) + "\n")
