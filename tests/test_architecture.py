"""The floors of docs/architecture.md, checked on every import in the source tree.

Every ``import`` and ``from ... import`` (including those inside functions) is read from the
syntax tree of each module under the project's packages. A module may import from its own
package and from floors below its own; the listed pairs on one floor never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("ems", "dispatch", "drivers", "forecasting", "simulations")

# Longest prefix wins. Floor numbers grow upwards; docs/architecture.md draws the same table.
FLOORS: dict[str, int] = {
    "ems.config": 0,
    "ems.fleet": 0,
    "ems.market": 0,
    "ems.optimise": 1,
    "ems.guard": 1,
    "dispatch": 1,
    "forecasting": 1,
    "drivers": 1,
    "ems.control": 2,
    "ems.scheduler": 2,
    "ems.bcp": 2,
    "ems.store": 2,
    "ems.dispatching": 2,
    "ems.devices": 2,
    "ems.planning": 2,
    "simulations": 3,
    "ems.cli": 4,
    "ems.web": 4,
    "ems.__main__": 4,
}

# Parts on one floor that meet only through the ground (the fleet contract, the config).
NEVER = {
    ("dispatch", "ems.optimise"),
    ("ems.optimise", "dispatch"),
    ("drivers", "ems"),
    ("drivers", "dispatch"),
    ("drivers", "forecasting"),
    ("ems.optimise", "forecasting"),
    ("dispatch", "forecasting.portfolio"),
    ("ems.optimise", "drivers"),
    ("dispatch", "drivers"),
}


def part_of(module: str) -> str | None:
    best = None
    for prefix in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return best


def source_modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.append((".".join(parts), path))
    return found


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the importing package
                base = module.split(".")
                is_package = path.name == "__init__.py"
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.append((node.lineno, target))
    return [(line, name) for line, name in names if name.split(".")[0] in PACKAGES]


def violations(modules: list[tuple[str, Path]] | None = None, root: Path = REPO) -> list[str]:
    found = []
    for module, path in modules if modules is not None else source_modules():
        if module == "ems":
            continue
        source_part = part_of(module)
        if source_part is None:
            found.append(f"{path.relative_to(root)}: module {module} has no floor in FLOORS")
            continue
        for line, target in imported_modules(path, module):
            where = f"{path.relative_to(root)}:{line}"
            if target == "ems":
                found.append(f"{where}: imports the ems package itself")
                continue
            target_part = part_of(target)
            if target_part is None:
                found.append(f"{where}: {target} has no floor in FLOORS")
                continue
            if target_part == source_part:
                continue
            if FLOORS[target_part] > FLOORS[source_part]:
                found.append(
                    f"{where}: {module} (floor {FLOORS[source_part]}) imports {target} "
                    f"(floor {FLOORS[target_part]}), upwards"
                )
            for source_prefix, target_prefix in NEVER:
                if (module + ".").startswith(source_prefix + ".") and (target + ".").startswith(target_prefix + "."):
                    found.append(f"{where}: {module} must never import {target}")
    return found


def test_no_import_runs_against_the_floors():
    assert violations() == []


def test_ems_package_init_imports_nothing():
    tree = ast.parse((REPO / "ems" / "__init__.py").read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == []


@pytest.mark.parametrize(
    "source, imported, expected",
    [
        ("drivers/fake_upward.py", "from ems.control import controller", "upwards"),
        ("ems/optimise/fake.py", "import dispatch.assign", "must never import"),
        ("ems/config/fake.py", "from ems.optimise import solve", "upwards"),
        ("ems/store/fake.py", "from ..cli import main", "upwards"),
    ],
)
def test_the_check_catches_a_planted_import(tmp_path, source, imported, expected):
    """The check itself can fail: a planted import is reported with its file and line."""
    planted = tmp_path / source
    planted.parent.mkdir(parents=True)
    planted.write_text(f"x = 1\n{imported}\n", encoding="utf-8")
    module = ".".join(Path(source).with_suffix("").parts)
    found = violations([(module, planted)], root=tmp_path)
    assert found and all(line.startswith(f"{source}:2: ") for line in found)
    assert any(expected in line for line in found)


def test_modules_between_tests(tmp_path):
    """Test modules share helpers through conftest.py and the tests/*_fixtures.py modules, never by
    importing another test module (which would also collect and run its tests twice)."""

    def test_module_imports(path: Path) -> list[str]:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        return [f"{path.name} imports {name}" for name in names if name.split(".")[-1].startswith("test_")]

    planted = tmp_path / "test_planted.py"
    planted.write_text("from tests.test_config import RAW\n", encoding="utf-8")
    assert test_module_imports(planted) == ["test_planted.py imports tests.test_config"]
    assert [found for path in sorted((REPO / "tests").glob("*.py")) for found in test_module_imports(path)] == []
