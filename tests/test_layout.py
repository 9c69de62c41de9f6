"""The house rules, read from the source itself: subpackages import one way (counting
imports inside functions), no module cycles, no module over ~250 lines, no streamlit in the
library, pages and studio/ use public names only, and nothing points outside the repo."""
from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "pfml_core"
# each may import only those before it (leaf helpers first)
ORDER = ["guards", "vision", "physics", "data", "eval", "training", "lab", "viz", "playground",
         "cli", "__main__"]
MAX_LINES = 250


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pfml_core module named by an import anywhere in the file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pfml_core")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pfml_core"):
            found.add(node.module)
            for a in node.names:  # `from pfml_core.x import module`
                sub = f"{node.module}.{a.name}"
                if (LIB.parent / (sub.replace(".", "/") + ".py")).exists() or \
                        (LIB.parent / sub.replace(".", "/")).is_dir():
                    found.add(sub)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in LIB.rglob("*.py")}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_subpackages_import_one_way():
    bad = []
    for mod, deps in _graph().items():
        src = _top(mod)
        if src == "__init__":
            continue
        for dep in deps:
            dst = _top(dep)
            if dst == "__init__" or dst == src:
                continue
            if ORDER.index(dst) > ORDER.index(src):
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports against the layer order " + " < ".join(ORDER) + ":\n" + "\n".join(bad)


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Depth-first search; a package importing its own children (its __init__) is no cycle."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d.startswith(m + "."):
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycles_between_modules():
    keys = _graph_keys()
    graph = {m: {d for d in deps if d in keys} - {m} for m, deps in _graph().items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_cycle_finder_on_known_graphs():
    # the old layout's data -> datasets_user -> data, and a package importing its child
    assert find_cycles({"data": {"user"}, "user": {"data"}}) == ["data -> user -> data"]
    assert find_cycles({"pkg": {"pkg.a"}, "pkg.a": {"guards"}, "guards": set()}) == []


def _graph_keys() -> set[str]:
    return {_module_name(p) for p in LIB.rglob("*.py")}


def test_a_cycle_is_detected(tmp_path):
    """The walker above sees imports inside functions (the kind that hid the old cycles)."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from pfml_core.training import engine\n")
    assert "pfml_core.training.engine" in _imports(f)


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in LIB.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_library_never_imports_streamlit():
    users = [str(p.relative_to(ROOT)) for p in LIB.rglob("*.py")
             if any(d == "streamlit" or d.startswith("streamlit.") for d in _all_imports(p))]
    assert not users


def _all_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _app_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")),
            *sorted((ROOT / "studio").glob("*.py"))]


@pytest.mark.parametrize("path", _app_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_uses_public_names_only(path):
    """`from pfml_core.<pkg> import name` must name something the package exports."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pfml_core"):
            parts = node.module.split(".")
            if len(parts) > 2:
                bad.append(f"{node.module} (a module inside a subpackage)")
                continue
            pkg = importlib.import_module(node.module)
            public = set(getattr(pkg, "__all__", ()))
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_subpackage = len(parts) == 1 and (LIB / a.name).is_dir()
                is_viz_module = node.module == "pfml_core.viz"  # viz: one builder module per page
                if not (a.name in public or is_subpackage or is_viz_module):
                    bad.append(sub)
        elif isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.startswith("pfml_core.")]
    assert not bad, f"{path.name} imports non-public names: {bad}"


def test_nothing_points_outside_the_repo():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    needles = ("shared/", "PFML_SPEC", "STYLE.md", "\u00a7")
    hits = []
    for f in files:
        path = ROOT / f
        if f == "tests/test_layout.py" or not path.is_file() or path.suffix in (".png", ".gif", ".webp"):
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{f}: {n}" for n in needles if n in text]
    assert not hits, hits
