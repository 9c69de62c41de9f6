"""The house rules that import-linter's contracts (pyproject.toml, `make lint`) do not
cover: no module over ~250 lines, pages and studio/ use public names only, and nothing
points outside the repo."""
from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "pfml_core"
MAX_LINES = 250


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in LIB.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


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


MAX_MODULE_DOC_LINES = 7


def test_module_docstrings_are_short():
    """A module docstring says what the module is for and why; details live with the code."""
    files = [*sorted(LIB.rglob("*.py")), *_app_files()]
    long = {str(p.relative_to(ROOT)): n for p in files
            if (n := len((ast.get_docstring(ast.parse(p.read_text())) or "").splitlines()))
            > MAX_MODULE_DOC_LINES}
    assert not long, f"module docstrings over {MAX_MODULE_DOC_LINES} lines: {long}"
