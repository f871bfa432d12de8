"""The package's floors, read from its imports (ast, nothing is run): no import cycle; the
library at the top of the package reaches none of the folders beside it, nor Ray, tqdm or
matplotlib; an op imports only the array switch (and the ops it is made of); each folder
imports only what its __init__ says it may. A failure names the file, the line and the import,
and for a closure the chain of imports that leads there."""
import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minibert"
WINGS = ("minibert.speed", "minibert.data", "minibert.qa", "minibert.runs", "minibert.lab",
         "minibert.cli")
HEAVY = ("ray", "tqdm", "matplotlib")
# what each folder may import beyond itself and the standard library / third-party packages
ALLOWED = {
    "minibert.ops": ("minibert.backend",),
    "minibert.speed": ("minibert.backend", "minibert.ops", "minibert.atomic", "minibert.cache"),
    "minibert.data": ("minibert.checks", "minibert.atomic", "minibert.cache"),
    "minibert.qa": ("minibert.checks", "minibert.atomic", "minibert.data"),
    "minibert.runs": ("minibert.", ),          # anything but lab and the CLI (below)
    "minibert.lab": ("minibert.", ),           # anything but the CLI
}
FORBIDDEN = {"minibert.runs": ("minibert.lab", "minibert.cli"), "minibert.lab": ("minibert.cli",)}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name):
    """[(line, imported name)] of a module: every import statement, at any depth (an import
    inside a function counts: it is part of what the code needs)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:        # `from . import ops`: the module ops itself
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES else target))
    return found


def edges(name):
    """{imported minibert module: line} of a module (minibert's own __init__, which every
    import runs, is left out: it holds the public names of the library only)."""
    return {target: line for line, target in imports_of(name)
            if target in MODULES and target not in (name, "minibert")}


GRAPH = {name: edges(name) for name in MODULES}


def where(name, target):
    return f"{MODULES[name].relative_to(PACKAGE.parent)}:{GRAPH[name][target]} imports {target}"


def chain_to(start, reached):
    """The import chain from `start` to the first module for which reached(module) holds, as
    ["file:line imports x", ...], or None."""
    parents, queue = {start: None}, collections.deque([start])
    while queue:
        current = queue.popleft()
        for target in GRAPH[current]:
            if target not in parents:
                parents[target] = current
                if reached(target):
                    steps, node = [], target
                    while parents[node] is not None:
                        steps.append(where(parents[node], node))
                        node = parents[node]
                    return steps[::-1]
                queue.append(target)
    return None


def third_party(name):
    """{top-level package: (line, name)} of the non-minibert imports of a module."""
    return {imported.split(".")[0]: (line, imported) for line, imported in imports_of(name)
            if not imported.startswith("minibert")}


def in_package(name, package):
    return name == package or name.startswith(package + ".")


LIBRARY = [name for name in MODULES if name != "minibert"
           and not any(in_package(name, wing) for wing in WINGS)]


def test_the_library_and_its_wings_are_where_the_layout_says():
    assert "minibert.model" in LIBRARY and "minibert.ops.linear" in LIBRARY
    assert "minibert.runs.run" not in LIBRARY and "minibert.cli" not in LIBRARY
    for wing in WINGS[:-1]:
        init = MODULES[wing]
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init}: no docstring"


def test_no_import_cycle():
    def cycle_from(start):
        stack, on_path = [(start, iter(GRAPH[start]))], [start]
        while stack:
            node, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                on_path.pop()
            elif target in on_path:
                loop = on_path[on_path.index(target):] + [target]
                return [where(a, b) for a, b in zip(loop, loop[1:])]
            elif len(on_path) < len(GRAPH):
                stack.append((target, iter(GRAPH[target])))
                on_path.append(target)
        return None
    for name in GRAPH:
        cycle = cycle_from(name)
        assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", LIBRARY)
def test_the_library_reaches_no_wing_and_no_heavy_package(name):
    chain = chain_to(name, lambda m: any(in_package(m, wing) for wing in WINGS))
    assert chain is None, f"{name} reaches a folder beside the library: " + "; ".join(chain)
    closure = [name] + [m for m in MODULES if chain_to(name, lambda x, m=m: x == m)]
    for module in closure:
        for package, (line, imported) in third_party(module).items():
            assert package not in HEAVY, (
                f"{MODULES[module].relative_to(PACKAGE.parent)}:{line} imports {imported}, "
                f"reached from {name}" + ("" if module == name else ": " + "; ".join(
                    chain_to(name, lambda x: x == module))))


@pytest.mark.parametrize("name", [m for m in MODULES if in_package(m, "minibert.ops")])
def test_an_op_imports_only_the_array_switch(name):
    # an op may use another op (attention drops out its probabilities with the dropout op),
    # and the standard library's math (and what the row-wise declaration is made of); nothing
    # else, NumPy included: it asks its inputs
    for target in GRAPH[name]:
        assert in_package(target, "minibert.ops") or target == "minibert.backend", \
            where(name, target)
    for package, (line, imported) in third_party(name).items():
        assert package in ("math", "dataclasses", "functools"), \
            f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {imported}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_rewrites_another_modules_names(name):
    # what a reader sees imported is what runs: no setattr but on an object's own fields, no
    # reach into sys.modules (the speed layer sets the row-wise ops' executor instead)
    path = MODULES[name]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            assert isinstance(node.args[0], ast.Name) and node.args[0].id == "self", \
                f"{path.relative_to(PACKAGE.parent)}:{node.lineno} calls setattr on another object"
        if isinstance(node, ast.Attribute) and node.attr == "modules" and \
                getattr(node.value, "id", None) == "sys":
            raise AssertionError(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} reads "
                                 "sys.modules")


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_each_folder_imports_what_its_docstring_allows(folder):
    for name in [m for m in MODULES if in_package(m, folder)]:
        for target in GRAPH[name]:
            if in_package(target, folder):
                continue
            allowed = any(in_package(target, a) or (a.endswith(".") and target.startswith(a))
                          for a in ALLOWED[folder])
            forbidden = any(in_package(target, f) for f in FORBIDDEN.get(folder, ()))
            assert allowed and not forbidden, where(name, target)


def test_a_broken_rule_is_named_by_file_line_and_import(tmp_path):
    # the checker itself: a chain is found and named, file and line first
    GRAPH["minibert.optim"]["minibert.data.tasks"] = 99
    try:
        chain = chain_to("minibert.optim", lambda m: in_package(m, "minibert.data"))
        assert chain == ["minibert/optim.py:99 imports minibert.data.tasks"]
    finally:
        del GRAPH["minibert.optim"]["minibert.data.tasks"]
