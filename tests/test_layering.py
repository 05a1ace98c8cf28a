"""Imports run one way, down the flow of data (DESIGN.md, "One direction
of data"):

    features -> (beam_jobs | simulation | data | layers | losses | evaluation)
             -> models -> training -> export -> serving -> testing
             -> (bench | cli)

Every module of `tfcvr/` and `beam_jobs/` is read with `ast`, its
module-level and function-level imports alike (and `importlib.import_module`
of a literal name); an import of a package on a higher floor, or of another
package on the same floor, fails the test with the module, the line and
both floors.
"""

import ast
import os
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("tfcvr", "beam_jobs")

# Package -> floor; a package imports only from lower floors and itself.
FLOORS = {
    "tfcvr.features": 0,
    # The one `.keras` registration, used by layers, losses and models.
    "tfcvr.serialization": 0,
    "beam_jobs": 1,
    "tfcvr.simulation": 1,
    "tfcvr.data": 1,
    "tfcvr.layers": 1,
    "tfcvr.losses": 1,
    "tfcvr.evaluation": 1,
    "tfcvr.models": 2,
    "tfcvr.training": 3,
    "tfcvr.export": 4,
    "tfcvr.serving": 5,
    "tfcvr.testing": 6,
    "tfcvr.bench": 7,
    "tfcvr.cli": 7,
}
# The package root: `__version__`, and its packages imported on first use
# by name, so importing it from anywhere imports nothing above.
ROOT_PACKAGE = "tfcvr"
# Same-floor imports that are allowed: the command line fronts the bench.
SAME_FLOOR_ALLOWED = {("tfcvr.cli", "tfcvr.bench")}


def package_of(module):
    """The `FLOORS` entry `module` belongs to, None for a module of
    neither tree or one of `tfcvr` on no floor."""
    parts = module.split(".")
    if parts[0] == ROOT_PACKAGE:
        return ".".join(parts[:2]) if ".".join(parts[:2]) in FLOORS else None
    return parts[0] if parts[0] in FLOORS else None


def floor_of_import(target):
    """`(package, floor)` of an imported name; an attribute of the package
    root (`from tfcvr import __version__`) is on the ground floor."""
    package = package_of(target)
    if package is None and target.split(".")[0] == ROOT_PACKAGE:
        return ROOT_PACKAGE, 0
    return package, FLOORS.get(package)


def module_name(path):
    rel = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
    if rel[-1] == "__init__":
        rel = rel[:-1]
    return ".".join(rel)


def is_package(path):
    return os.path.basename(path) == "__init__.py"


def imported_modules(tree, module, package):
    """`(line, imported module)` for every import in `tree`, resolving
    relative imports and `from pkg import submodule`."""
    base = module if package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                source = ".".join(anchor + ([source] if source else []))
            for alias in node.names:
                # `from tfcvr import models` imports the package `models`.
                yield node.lineno, f"{source}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def violations_in_source(source, module, package=False, path="<source>"):
    """One line per import of `source` (the code of `module`) that runs
    back up the flow."""
    own = ROOT_PACKAGE if module == ROOT_PACKAGE else package_of(module)
    if own is None:
        return [f"{path}: {module} is on no floor; add its package to FLOORS"]
    mine = 0 if own == ROOT_PACKAGE else FLOORS[own]
    found = []
    tree = ast.parse(source, filename=path)
    for line, target in imported_modules(tree, module, package):
        other, theirs = floor_of_import(target)
        if other is None or other == own:
            continue
        same_floor = theirs == mine and (own, other) not in SAME_FLOOR_ALLOWED
        if theirs > mine or same_floor:
            found.append(
                f"{path}:{line}: {module} imports {target}: floor {mine} "
                f"({own}) -> floor {theirs} ({other})"
            )
    return found


def python_files():
    for top in SCANNED:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


class LayeringTest(unittest.TestCase):
    def test_no_import_runs_back_up_the_flow(self):
        found, scanned = [], 0
        for path in python_files():
            with open(path, encoding="utf-8") as f:
                source = f.read()
            found += violations_in_source(
                source, module_name(path), is_package(path),
                os.path.relpath(path, ROOT),
            )
            scanned += 1
        self.assertGreater(scanned, 100)
        self.assertEqual(found, [], "\n" + "\n".join(found))

    def test_the_check_catches_each_kind_of_back_import(self):
        cases = {
            "from tfcvr.training import train": "floor 2 (tfcvr.models) -> "
            "floor 3 (tfcvr.training)",
            "def f():\n    import tfcvr.export.warmup": "-> floor 4 (tfcvr.export)",
            "from tfcvr import serving": "-> floor 5 (tfcvr.serving)",
            "import importlib\nimportlib.import_module('tfcvr.cli.main')":
                "-> floor 7 (tfcvr.cli)",
            "from ... import training": "-> floor 3 (tfcvr.training)",
        }
        for source, expected in cases.items():
            with self.subTest(source=source):
                found = violations_in_source(
                    source, "tfcvr.models.estimators.fake", path="fake.py"
                )
                self.assertEqual(len(found), 1, found)
                self.assertIn(expected, found[0])
                self.assertIn("fake.py:", found[0])

    def test_floor_one_packages_do_not_import_each_other(self):
        found = violations_in_source(
            "from tfcvr.data import DatasetDir", "tfcvr.layers.embedding"
        )
        self.assertEqual(len(found), 1)
        self.assertIn("floor 1 (tfcvr.layers) -> floor 1 (tfcvr.data)",
                      found[0])

    def test_downward_and_own_imports_pass(self):
        source = ("from tfcvr.features import keys\n"
                  "from tfcvr.losses import IPWLoss\n"
                  "from tfcvr.models.cvr_model import CVRModel\n"
                  "from . import registry\n"
                  "import numpy\n")
        self.assertEqual(violations_in_source(source, "tfcvr.models.x"), [])

    def test_a_new_package_needs_a_floor(self):
        found = violations_in_source("import os", "tfcvr.plugins.thing")
        self.assertIn("no floor", found[0])
