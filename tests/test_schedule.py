"""tests/schedule.py: the units of work, their order, and the record of module seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import schedule

TESTS = Path(__file__).parent


def test_a_directory_with_a_session_fixture_is_one_unit_and_other_modules_their_own() -> None:
    shared = schedule.shared_fixture_dirs(TESTS)
    assert "tests/queries" in shared
    assert "tests/domain" not in shared  # its conftest has no session fixture
    assert schedule.unit_of("tests/queries/test_api.py::test_x[a]", shared) == "tests/queries"
    assert schedule.unit_of("tests/domain/test_account.py::T::test_y", shared) == (
        "tests/domain/test_account.py"
    )
    assert schedule.unit_of("tests/queriesx/test_a.py::t", ["tests/queries"]) == (
        "tests/queriesx/test_a.py"
    )


def test_units_go_longest_first_and_unknown_modules_count_as_long() -> None:
    modules = {"a.py": {"a.py"}, "d": {"d/x.py", "d/y.py"}, "new.py": {"new.py"}, "b.py": {"b.py"}}
    known = {"a.py": 5.0, "d/x.py": 30.0, "d/y.py": 40.0, "b.py": 5.0}
    seconds = schedule.unit_seconds(modules, known)
    assert seconds == {"a.py": 5.0, "d": 70.0, "new.py": schedule.unknown_module_s, "b.py": 5.0}
    work = {unit: {f"{unit}::t": False} for unit in modules}
    order = list(schedule.longest_first(work, seconds))
    assert order == ["d", "new.py", "a.py", "b.py"]  # a.py and b.py tie: collection order


def test_the_record_names_existing_modules_with_seconds() -> None:
    seconds = schedule.load_module_seconds()
    assert len(seconds) >= 100, "tests/module_seconds.json is missing most modules"
    gone = [module for module in seconds if not (TESTS.parent / module).is_file()]
    assert not gone, f"modules no longer there (rerun --record-module-seconds): {gone}"


@pytest.mark.parametrize(
    "content", ['["tests/a.py"]', '{"tests/a.py": -1}', '{"tests/a": 1}', '{"tests/a.py": "1"}']
)
def test_a_malformed_record_fails_loudly(tmp_path: Path, content: str) -> None:
    path = tmp_path / "seconds.json"
    path.write_text(content)
    with pytest.raises(AssertionError):
        schedule.load_module_seconds(path)


def test_the_recorder_sums_a_modules_phases_and_merges_into_the_record(tmp_path: Path) -> None:
    root = tmp_path
    (root / "tests").mkdir()
    for name in ("a.py", "b.py"):
        (root / "tests" / name).write_text("")
    path = root / "seconds.json"
    path.write_text(json.dumps({"tests/a.py": 9.0, "tests/b.py": 2.0, "tests/gone.py": 1.0}))
    recorder = schedule.ModuleSecondsRecorder(path)
    for nodeid, duration in (
        ("tests/a.py::t1", 1.0),
        ("tests/a.py::t1", 2.25),
        ("tests/a.py::t2", 0.5),
    ):
        recorder.pytest_runtest_logreport(_Report(nodeid, duration))  # type: ignore[arg-type]
    recorder.pytest_sessionfinish(_Session(root))  # type: ignore[arg-type]
    assert json.loads(path.read_text()) == {"tests/a.py": 3.8, "tests/b.py": 2.0}


class _Report:
    def __init__(self, nodeid: str, duration: float) -> None:
        self.nodeid = nodeid
        self.duration = duration


class _Config:
    def __init__(self, root: Path) -> None:
        self.rootpath = root


class _Session:
    def __init__(self, root: Path) -> None:
        self.config = _Config(root)


def test_the_test_command_hands_out_units_longest_first(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end through pytest-xdist on two workers: the long one-test module starts
    first, though xdist's own order (most tests first) would start it last."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS.parent))
    started = pytester.path / "started.txt"
    seconds = {"test_many.py": 1.0, "test_mid.py": 10.0, "test_long.py": 100.0}
    pytester.makeconftest(
        "import json, pathlib\n"
        "from tests import schedule\n"
        "def pytest_xdist_make_scheduler(config, log):\n"
        f"    return schedule.make_scheduler(config, log, {seconds!r})\n"
    )
    for name, count in (("many", 4), ("mid", 2), ("long", 1)):
        pytester.makepyfile(**{f"test_{name}": "\n".join(
            f"def test_{i}():\n    with open({str(started)!r}, 'a') as f:\n"
            f"        f.write('{name}\\n')\n"
            for i in range(count)
        )})  # fmt: skip
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadscope", "-p", "no:schemathesis", "-p", "no:hypothesispytest"
    )  # fmt: skip
    result.assert_outcomes(passed=7)
    order = started.read_text().split()
    assert sorted(order) == sorted(["many"] * 4 + ["mid"] * 2 + ["long"]), order
    assert order.index("long") < order.index("many"), order
