"""The package reads in layers: no import cycle, counting the imports inside functions too."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "sret_mini"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere (top level, functions, __main__ blocks)}."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
                base = base if node.level else node.module or ""
                targets |= {base, *(f"{base}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        # the package's __init__ re-exports every layer: importing it is not a layer of its own
        graph[name] = {t for t in targets if t in modules and t not in (name, "sret_mini")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import path that comes back to where it started (depth-first search)."""
    found, done = [], set()

    def visit(node, path):
        for nxt in sorted(graph[node]):
            if nxt in path:
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_the_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_no_module_of_the_package_imports_itself_back():
    found = cycles(imports())
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_model_knows_nothing_of_the_authors_file_format():
    layers = imports()
    assert not layers["sret_mini.model"] & {"sret_mini.convert", "sret_mini.engine.checkpoint", "sret_mini.registry"}


def test_losses_and_soft_labels_import_nothing_of_the_training_engine():
    layers = imports()
    for module in ("sret_mini.distill", "sret_mini.distill.softlabels"):
        assert not layers[module] & {"sret_mini.engine.loop", "sret_mini.cli"}, module


def test_only_the_command_line_imports_the_commands():
    users = {
        name
        for name, path in ((module_name(p), p) for p in PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and any(a.name == "main" for a in node.names)
    }
    assert users <= {"sret_mini.cli", "sret_mini.__main__"}, users


#: public methods that a framework calls, not this project: timm's model contract, torchvision's ImageFolder
CALLED_BY_FRAMEWORKS = {"SReT.prune_intermediate_layers", "SubsetImageFolder.find_classes"}


def test_every_public_function_and_class_of_the_package_is_used_somewhere():
    """A public name that nothing calls (package, tests, chapters, benchmarks, README) is dead code."""
    root = Path(__file__).parents[1]
    texts = [p.read_text() for pattern in ("sret_mini/**/*.py", "tests/*.py", "bench/*.py", "book/*.ipynb", "book/*.md")
             for p in root.glob(pattern)] + [(root / "README.md").read_text()]  # fmt: skip
    unused = []
    for path in (root / "sret_mini").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            named = [node] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []
            if isinstance(node, ast.ClassDef):
                named += [(node, sub) for sub in node.body if isinstance(sub, ast.FunctionDef)]
            for item in named:
                cls, fn = item if isinstance(item, tuple) else (None, item)
                name = f"{cls.name}.{fn.name}" if cls else fn.name
                if fn.name.startswith("_") or name in CALLED_BY_FRAMEWORKS:
                    continue
                uses = sum(len(re.findall(rf"\b{re.escape(fn.name)}\b", text)) for text in texts)
                if uses <= 1:  # its own definition
                    unused.append(f"{path.relative_to(root)}: {name}")
    assert not unused, f"defined and never used: {unused}"
