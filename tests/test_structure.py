"""The package's shape, as DESIGN.md asks: imports point down (no circle), no private helper
is used across modules, and no function is longer than a reader can hold (80 lines).

These walk the source with ``ast``; they import nothing, so they fail on the structure
itself (a circle that Python happens to resolve lazily still counts)."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "tinyntk"
MAX_FUNCTION_LINES = 80


def _modules():
    return {f.stem: ast.parse(f.read_text(), filename=str(f)) for f in sorted(PACKAGE.glob("*.py"))}


def _imports(tree):
    """``{module: [(name or None, alias)]}``: every import of a tinyntk module in ``tree``,
    at any depth (function-level imports count), with the names taken from it."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _package_module(node)
            if module == "":                            # from . import x as y (or from tinyntk)
                for a in node.names:
                    found.setdefault(a.name, []).append((None, a.asname or a.name))
            elif module is not None:                    # from .x import y (or from tinyntk.x)
                target = module.split(".")[0]
                found.setdefault(target, []).extend((a.name, a.asname or a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "tinyntk" or a.name.startswith("tinyntk."):
                    target = a.name.split(".")[1] if "." in a.name else "__init__"
                    found.setdefault(target, []).append((None, a.asname or a.name.split(".")[0]))
    return found


def _package_module(node):
    """The module inside tinyntk an ``ImportFrom`` names ("" for the package itself), or
    None for an import from outside the package."""
    if node.level == 1:
        return node.module or ""
    if node.level == 0 and node.module and (node.module == "tinyntk"
                                            or node.module.startswith("tinyntk.")):
        return node.module[len("tinyntk."):] if "." in node.module else ""
    return None


def _dotted(node) -> str:
    """``a.b.c`` for a chain of attribute accesses on a name, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, ast.Name) else ""


def _cycle(graph):
    """A list of modules forming a circle, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_walkers_see_absolute_imports_and_dotted_names():
    tree = ast.parse("from tinyntk.network import _as_batch\nfrom tinyntk import checkpoint\n"
                     "import tinyntk.kernels as K\nimport tinyntk\nx = tinyntk.network._x\n")
    found = _imports(tree)
    assert found["network"] == [("_as_batch", "_as_batch")]
    assert found["checkpoint"] == [(None, "checkpoint")]
    assert found["kernels"] == [(None, "K")] and found["__init__"] == [(None, "tinyntk")]
    chains = [_dotted(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    assert "tinyntk.network._x" in chains


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": ["c"], "c": []}) is None


def test_no_import_circle():
    graph = {mod: sorted(set(_imports(tree)) - {mod}) for mod, tree in _modules().items()}
    # __init__ imports the modules it exports: any of those importing the package back
    # (``import tinyntk``) closes a circle through it
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def test_no_private_helper_crosses_a_module():
    offenders = []
    for mod, tree in _modules().items():
        imports = _imports(tree)
        aliases = {alias for target, names in imports.items() for name, alias in names if name is None}
        for target, names in imports.items():
            offenders += [f"{mod}: from .{target} import {n}" for n, _ in names if n and _private(n)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                chain = _dotted(node)
                if chain.split(".")[0] in aliases | {"tinyntk"}:
                    offenders.append(f"{mod}: {chain}")
    assert offenders == [], "private names used across modules (give them a public name " \
                            f"in the lower module): {offenders}"


@pytest.mark.parametrize("mod", sorted(f.stem for f in PACKAGE.glob("*.py")))
def test_no_function_over_80_lines(mod):
    tree = _modules()[mod]
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"tinyntk/{mod}.py: functions over {MAX_FUNCTION_LINES} lines " \
                       f"(docstring included): {long}"
