"""The package layering of ARCHITECTURE.md section 2, checked on the source (``ast``, nothing is
imported): each rule names the offending import (module, line, what it imports).

Rules:

1. ``tradex.domain`` imports only ``tradex.domain`` and the standard library.
2. The jitted kernel layer imports only numpy, numba (and llvmlite, numba's code generator:
   ``prefetch`` builds an LLVM intrinsic), the standard library and itself. The layer is
   :data:`KERNEL_LAYER`: the modules whose functions are compiled with ``engine_njit``
   (``kernel``, ``book_ops``, ``bitmap``, ``hashtable``, ``state_kernels``), the intrinsic
   they call (``prefetch``), the decorator with its on-disk cache (``jit_cache``), and the
   constants and dtypes they are written against; and ``tradex.projections.book_kernel``
   (the ClickHouse read model's books). ``book.py`` is not in it: it is the Python
   wrapper that owns the arrays and calls the kernels (``book_state.py`` for
   ``book_kernel``). Any module that imports numba, llvmlite or ``jit_cache`` must be in
   the layer (so a new kernel is checked too).
3. ``tradex.projections`` and ``tradex.queries`` (the read side) never import the write
   side's processors, services, their state and the transactional stage
   (:data:`WRITE_SIDE`).
4. ``tradex.infra`` imports no other ``tradex`` package but ``tradex.observability`` (traces,
   logs: the stage loop and the client configs call them), which imports only
   ``tradex.infra`` and itself.
5. No import cycle between ``tradex`` modules. Module-level and function-local imports
   count; imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

TRADEX = Path(__file__).resolve().parents[1] / "tradex"

KERNEL_LAYER = frozenset((
    *(f"tradex.matching.{name}" for name in (
        "kernel", "book_ops", "bitmap", "hashtable", "state_kernels", "prefetch", "jit_cache",
        "constants", "dtypes",
    )),
    "tradex.projections.book_kernel",  # the ClickHouse read model's books
    "tradex.log.archive_kernel",  # an archive's Avro blocks to columns
))  # fmt: skip
KERNEL_THIRD_PARTY = frozenset(("numpy", "numba", "llvmlite"))
JIT_MARKERS = frozenset(("numba", "llvmlite", "tradex.matching.jit_cache"))
WRITE_SIDE = frozenset(
    (
        "tradex.commands.processor",
        "tradex.commands.service",
        "tradex.commands.rebuild",
        "tradex.commands.snapshots",
        "tradex.commands.reference_processor",
        "tradex.commands.reference_service",
        "tradex.commands.reference_table",
        "tradex.matching.service",
        "tradex.matching.partition",
        "tradex.matching.recovery",
        "tradex.infra.stage",
    )
)
READ_SIDE = ("tradex.projections", "tradex.queries")
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (a tradex module resolved to the file it names)
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


# -- reading imports ------------------------------------------------------------------------


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root`` (a package directory); compiled
    extensions count by their stub (``.pyi``)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi") or "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.setdefault(".".join(parts), path)
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda n: n.lineno)


def imports_of(module: str, source: str, is_package: bool, known: set[str]) -> list[Import]:
    """The imports of one module; a ``from package import name`` targets the submodule
    ``package.name`` when there is one, else the package."""
    out: list[Import] = []
    for node in _statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [Import(module, alias.name, node.lineno) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            out.append(Import(module, candidate if candidate in known else base, node.lineno))
    return list(dict.fromkeys(out))  # once per (target, line)


def read_tree(root: Path = TRADEX) -> dict[str, list[Import]]:
    names = module_names(root)
    known = set(names)
    return {
        name: [] if path.suffix == ".pyi" else
        imports_of(name, path.read_text(), path.name == "__init__.py", known)
        for name, path in names.items()
    }  # fmt: skip


# -- the rules ------------------------------------------------------------------------------


def _top(name: str) -> str:
    return name.split(".")[0]


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def domain_violations(tree: dict[str, list[Import]]) -> list[str]:
    return [
        f"domain imports outside the domain and the standard library: {i}"
        for module, imports in tree.items() if _inside(module, "tradex.domain")
        for i in imports if not _inside(i.target, "tradex.domain") and _top(i.target) not in STDLIB
    ]  # fmt: skip


def kernel_violations(tree: dict[str, list[Import]]) -> list[str]:
    found = []
    for module, imports in tree.items():
        for i in imports:
            if module in KERNEL_LAYER:
                if not (i.target in KERNEL_LAYER or _top(i.target) in KERNEL_THIRD_PARTY
                        or _top(i.target) in STDLIB):  # fmt: skip
                    found.append(f"a kernel imports beyond numpy/numba/stdlib/kernels: {i}")
            elif any(_inside(i.target, marker) for marker in JIT_MARKERS):
                found.append(f"a jitted module outside KERNEL_LAYER (add it there): {i}")
    return found


def read_side_violations(tree: dict[str, list[Import]]) -> list[str]:
    return [
        f"the read side imports the write side: {i}"
        for module, imports in tree.items() if any(_inside(module, p) for p in READ_SIDE)
        for i in imports if any(_inside(i.target, w) for w in WRITE_SIDE)
    ]  # fmt: skip


def infra_violations(tree: dict[str, list[Import]]) -> list[str]:
    return [
        f"infra imports another tradex package: {i}"
        for module, imports in tree.items()
        if _inside(module, "tradex.infra") or _inside(module, "tradex.observability")
        for i in imports if _top(i.target) == "tradex" and not _inside(i.target, "tradex.infra")
        and not _inside(i.target, "tradex.observability")
    ]  # fmt: skip


def cycles(tree: dict[str, list[Import]]) -> list[list[str]]:
    """The import cycles between the modules of ``tree``: each strongly connected set of
    two or more modules (or one importing itself), sorted (Tarjan, iteratively)."""
    edges = {
        m: sorted({i.target for i in imports if i.target in tree}) for m, imports in tree.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                target = edges[node][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(found)


def cycle_violations(tree: dict[str, list[Import]]) -> list[str]:
    out = []
    for component in cycles(tree):
        members = set(component)
        ties = [str(i) for m in component for i in tree[m] if i.target in members]
        out.append(f"import cycle {' <-> '.join(component)}: {'; '.join(ties)}")
    return out


def violations(tree: dict[str, list[Import]]) -> list[str]:
    return [
        *domain_violations(tree),
        *kernel_violations(tree),
        *read_side_violations(tree),
        *infra_violations(tree),
        *cycle_violations(tree),
    ]


# -- the tests ------------------------------------------------------------------------------


def test_the_tree_keeps_its_layers() -> None:
    tree = read_tree()
    assert len(tree) > 80, "the tree was not read"
    assert {"tradex.domain.account", "tradex.log.source", "tradex.matching.kernel"} <= set(tree)
    assert set(tree) >= KERNEL_LAYER, "a kernel module was renamed: update KERNEL_LAYER"
    assert set(tree) >= WRITE_SIDE, "a write-side module was renamed: update WRITE_SIDE"
    assert violations(tree) == []


def _synthetic(sources: dict[str, str]) -> dict[str, list[Import]]:
    """A tree of module name -> source (a name ending in ``.__init__`` is a package)."""
    names = {name.removesuffix(".__init__"): name.endswith(".__init__") for name in sources}
    known = set(names)
    return {
        name: imports_of(name, sources[name + (".__init__" if package else "")], package, known)
        for name, package in names.items()
    }


def test_the_checker_finds_and_names_each_kind_of_violation() -> None:
    tree = _synthetic({
        "tradex.domain.a": "import json\nfrom tradex.domain import b\nfrom kafka import x, y\n",
        "tradex.domain.b": "def f():\n    from tradex.infra import settings\n",
        "tradex.matching.kernel": "import numpy\nfrom tradex.matching import dtypes\nimport pandas\n",
        "tradex.matching.dtypes": "import numpy as np\n",
        "tradex.matching.book2": "from numba import njit\n",
        "tradex.projections.pg": "from tradex.commands.processor import AccountProcessor\n",
        "tradex.commands.processor": "",
        "tradex.infra.settings": "from tradex.log import keys\n",
        "tradex.log.keys": "",
    })  # fmt: skip
    assert violations(tree) == [
        "domain imports outside the domain and the standard library: "
        "tradex.domain.a (line 3) imports kafka",
        "domain imports outside the domain and the standard library: "
        "tradex.domain.b (line 2) imports tradex.infra.settings",
        "a kernel imports beyond numpy/numba/stdlib/kernels: "
        "tradex.matching.kernel (line 3) imports pandas",
        "a jitted module outside KERNEL_LAYER (add it there): "
        "tradex.matching.book2 (line 1) imports numba",
        "the read side imports the write side: "
        "tradex.projections.pg (line 1) imports tradex.commands.processor",
        "infra imports another tradex package: "
        "tradex.infra.settings (line 1) imports tradex.log.keys",
    ]


def test_cycles_count_function_local_imports_but_not_type_checking_ones() -> None:
    tree = _synthetic({
        "tradex.schemas.codec": "def f():\n    from tradex.schemas.remote import connect\n",
        "tradex.schemas.remote": "from tradex.schemas.codec import Codec\n",
        "tradex.log.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from tradex.log.b import B\nelse:\n    import json\n",
        "tradex.log.b": "from tradex.log import a\n",
        "tradex.x.__init__": "from . import y\n",
        "tradex.x.y": "from .. import x\nfrom .z import q\n",
        "tradex.x.z": "from tradex.x.y import p\n",
        "tradex.self": "import tradex.self\n",
    })  # fmt: skip
    assert cycles(tree) == [
        ["tradex.schemas.codec", "tradex.schemas.remote"],
        ["tradex.self"],
        ["tradex.x", "tradex.x.y", "tradex.x.z"],
    ]
    (message, *_rest) = cycle_violations(tree)
    assert message == (
        "import cycle tradex.schemas.codec <-> tradex.schemas.remote: "
        "tradex.schemas.codec (line 2) imports tradex.schemas.remote; "
        "tradex.schemas.remote (line 1) imports tradex.schemas.codec"
    )
    assert [str(i) for i in tree["tradex.log.a"]] == [
        "tradex.log.a (line 1) imports typing",
        "tradex.log.a (line 5) imports json",  # the else branch runs
    ]


# -- the benchmarks' peers --------------------------------------------------------------------

BENCH_PEERS = frozenset(("eventsourcing", "liquibook"))  # the optional `bench` extra


def peer_violations(tree: dict[str, list[Import]]) -> list[str]:
    """The peers of the benchmarks are not runtime dependencies: only ``tradex.bench``
    imports them."""
    return [
        f"a benchmark peer imported outside tradex.bench: {i}"
        for module, imports in tree.items() if not _inside(module, "tradex.bench")
        for i in imports if _top(i.target) in BENCH_PEERS
    ]  # fmt: skip


def test_only_the_benchmarks_import_their_peers() -> None:
    assert peer_violations(read_tree()) == []
    tree = _synthetic({
        "tradex.bench.ledger_peer": "from eventsourcing.application import Application\n",
        "tradex.projections.x": "def f():\n    import liquibook\n",
    })  # fmt: skip
    assert peer_violations(tree) == [
        "a benchmark peer imported outside tradex.bench: "
        "tradex.projections.x (line 2) imports liquibook"
    ]
