"""No module reaches into another object's private attributes (STYLE.md: seams, not reach-ins).

An AST scan of the library's packages (tests excluded) flags:

- ``obj._name`` where ``obj`` is not ``self``, ``cls`` or ``super()``, even when ``obj`` is of
  a class of the same module (an object calls its collaborators' public methods; a helper
  that needs an object's private state is given the state, or the object a public seam);
- ``SomeClass._name`` read through a class's name from anywhere but that class's own body
  (a subclass extending ``Base._parameter_constraints``, say): add a public name instead;
- ``from pkg.module import _name`` of this project's packages, from another module;
- an import of a private module (``pkg._module``) of another of this project's packages.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("members", "ensembles", "combiners", "experiments")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_own(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def _enclosing_classes(tree: ast.AST) -> dict[ast.AST, set[str]]:
    """For every node, the names of the classes whose body it is in."""
    inside: dict[ast.AST, set[str]] = {}

    def visit(node: ast.AST, classes: set[str]) -> None:
        inside[node] = classes
        if isinstance(node, ast.ClassDef):
            classes = classes | {node.name}
        for child in ast.iter_child_nodes(node):
            visit(child, classes)

    visit(tree, set())
    return inside


def _class_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name) and node.id.lstrip("_")[:1].isupper():
        return node.id
    return None


def reach_ins(source: str, module: str) -> list[str]:
    """The private accesses of ``source`` (the module ``module``, e.g. ``ensembles.study``)."""
    tree = ast.parse(source)
    inside = _enclosing_classes(tree)
    package = module.split(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = _class_name(node.value)
            if owner is not None and owner not in inside[node]:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
            elif owner is None and not _is_own(node.value):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] not in PACKAGES:
                continue
            other_package = parts[0] != package
            if other_package and any(_private(part) for part in parts):
                found.append(f"line {node.lineno}: from {node.module} import (private module)")
            if node.module != module:
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PACKAGES and parts[0] != package and any(map(_private, parts)):
                    found.append(f"line {node.lineno}: import {alias.name}")
    return found


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_into_another_objects_privates(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert reach_ins(path.read_text(), module) == []


CASES = [
    # (source, module, number of reach-ins)
    ("def f(est):\n    return est._check_params()", "members.batched", 1),
    ("def f(ens, X):\n    return ens._validate_X(X)", "ensembles.distillation", 1),
    ("from members.neural import _NeuralEstimator", "members.batched", 1),
    ("from members._helpers import check_params", "ensembles.snapshot", 1),
    ("import ensembles._base", "experiments.study.runner", 1),
    ("from ensembles._base import BaseEnsemble", "ensembles.classifier", 0),
    ("class A:\n    def f(self):\n        return self._x + super()._y", "m.a", 0),
    # another object of the module's own class: still a reach-in
    (
        "class A:\n    def _g(self): ...\n    @classmethod\n    def f(cls, other):\n"
        "        return other._g()",
        "members.neural",
        1,
    ),
    ("class S:\n    def run(self):\n        return self.owner._losses()", "ensembles.search", 1),
    ("def f(est):\n    return est.__class__, est.__dict__", "members.neural", 0),
    # a subclass reading its base's private name through the base's class name
    (
        "class B:\n    _c = {}\nclass C(B):\n    _c = {**B._c, 'x': 1}",
        "ensembles.classifier",
        1,
    ),
    ("class B:\n    _c = {}\n    def f(self):\n        return B._c", "ensembles._base", 0),
]


@pytest.mark.parametrize(("source", "module", "count"), CASES)
def test_the_scan_finds_reach_ins(source, module, count):
    assert len(reach_ins(textwrap.dedent(source), module)) == count
