"""dpm/ is layered by folder: a module imports from its own layer and the layers below, never
from one above (function-level imports included), and no modules import each other in a circle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# each layer and the layers it may import from (its own included)
BELOW = {
    "base": {"base"},
    "data": {"base", "data"},
    "datasets": {"base", "data", "datasets"},
    "core": {"base", "data", "core"},
    "chain": {"base", "data", "core", "chain"},
    "estimate": {"base", "data", "core", "estimate"},
    "run": {"base", "data", "core", "chain", "run"},
    "report": {"report"},
}


def layer_of(module: str) -> str:
    """``dpm.core.model`` → ``core``; a module at dpm's top (the studies, the GPU check) → ``top``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "top"


def imports(path: Path) -> list[tuple[str, bool]]:
    """The dpm modules ``path`` imports, each with whether it is imported at the module's top."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dpm"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [(n if (ROOT / (n.replace(".", "/") + ".py")).exists() else node.module, id(node) in top)
                      for n in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names if a.name.startswith("dpm")]
    return found


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "dpm").rglob("*.py")
            if p.name != "__init__.py"}


def test_every_module_sits_in_a_known_layer():
    assert {layer_of(m) for m in modules()} == set(BELOW) | {"top"}


def test_no_module_imports_from_a_layer_above_its_own():
    up = [(m, imported) for m, path in modules().items() if layer_of(m) != "top"
          for imported, _ in imports(path) if layer_of(imported) not in BELOW[layer_of(m)]]
    assert up == []


def test_no_modules_import_each_other_in_a_circle():
    graph = {m: {i for i, at_top in imports(p) if at_top and i in modules()} for m, p in modules().items()}
    done, path = set(), []

    def visit(m):
        assert m not in path, f"import circle: {' → '.join(path[path.index(m):] + [m])}"
        if m in done:
            return
        path.append(m)
        for i in graph[m]:
            visit(i)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)
