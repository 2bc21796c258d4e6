"""dagkit ships inside each release with its own copy of the layout names it reads: they must be
platformkit.layout's, or a DAG would look for a runtime or manifest where deploy never puts one."""

from __future__ import annotations

import ast

from conftest import REPO

from platformkit import layout


def constants(path) -> dict[str, object]:
    """The module-level NAME = "literal" assignments of a file, read without importing it."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    found[target.id] = node.value.value
    return found


def test_dagkit_layout_names_are_platformkits():
    copied = {name: value for name, value in constants(REPO / "dags/dagkit/__init__.py").items()
              if hasattr(layout, name)}
    assert set(copied) >= {"MANIFEST", "RUNTIME_ARCHIVE", "RUNTIME_DIR"}
    for name, value in copied.items():
        assert value == getattr(layout, name), f"dagkit's {name} is {value!r}, platformkit.layout's {getattr(layout, name)!r}"


def test_dagkit_spells_no_layout_name_outside_its_constants():
    """A name written as a literal elsewhere in dagkit would escape the check above."""
    names = {layout.MANIFEST, layout.RUNTIME_ARCHIVE, layout.RUNTIME_MANIFEST, layout.STATE}
    for path in sorted((REPO / "dags/dagkit").glob("*.py")):
        tree = ast.parse(path.read_text())
        assigned = {id(node.value) for node in tree.body if isinstance(node, ast.Assign)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names:
                assert id(node) in assigned, f"{path.name}:{node.lineno} spells {node.value!r}"
