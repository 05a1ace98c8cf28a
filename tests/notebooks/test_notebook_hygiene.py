"""The notebooks are stored clean and teach the public API: no outputs, no
execution counts, imports only from tfcvr (plus the standard library and the
libraries a user has anyway), no model code defined in them. `make test`
executes them (nbmake); this checks what execution cannot."""

import ast
import json
import pathlib
import sys

import pytest

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ("01_quickstart.ipynb", "02_selection_bias.ipynb",
            "03_real_logs_to_serving.ipynb")
# Third-party packages a notebook may import beside tfcvr: what the user
# drives tfcvr with (Keras' fit and callbacks), never project code.
THIRD_PARTY = {"keras", "numpy", "matplotlib"}


def _code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return notebook, [c for c in notebook["cells"] if c["cell_type"] == "code"]


def _source(cell):
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == list(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    _, cells = _code_cells(path)
    assert cells, f"{path.name} has no code cell"
    for i, cell in enumerate(cells):
        assert cell.get("outputs") == [], f"{path.name} code cell {i} has outputs"
        assert cell.get("execution_count") is None, (
            f"{path.name} code cell {i} has an execution count")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_imports_only_tfcvr_and_defines_no_model_code(path):
    _, cells = _code_cells(path)
    for i, cell in enumerate(cells):
        tree = ast.parse(_source(cell))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name} cell {i}: relative import"
                names = [node.module]
            else:
                assert not isinstance(node, ast.ClassDef), (
                    f"{path.name} cell {i} defines class {node.name}: model code "
                    f"belongs in the package")
                continue
            for name in names:
                top = name.split(".")[0]
                allowed = (top == "tfcvr" or top in THIRD_PARTY
                           or top in sys.stdlib_module_names)
                assert allowed, f"{path.name} cell {i} imports {name}"
