"""The declared public API: every package's `__all__` resolves, every
estimator and backbone file is imported (and so registered and exported) by
its package, and the packages that must run without TensorFlow do."""

import ast
import importlib
import os
import subprocess
import sys
import textwrap
import unittest

import tfcvr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Packages whose `__init__` declares public names.
PACKAGES = (
    "tfcvr.data",
    "tfcvr.evaluation",
    "tfcvr.export",
    "tfcvr.features",
    "tfcvr.layers",
    "tfcvr.layers.backbones",
    "tfcvr.layers.core",
    "tfcvr.layers.embedding",
    "tfcvr.layers.graph",
    "tfcvr.losses",
    "tfcvr.models",
    "tfcvr.serving",
    "tfcvr.simulation",
    "tfcvr.testing",
    "tfcvr.training",
)


def registered_classes(folder, decorator):
    """Names of the classes under `folder` decorated with `decorator(...)`."""
    names = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", None)
                == decorator for d in node.decorator_list
            ):
                names.append(node.name)
    return names


class PublicAPITest(unittest.TestCase):
    def test_every_declared_name_resolves(self):
        for package in ("tfcvr",) + PACKAGES:
            with self.subTest(package=package):
                module = importlib.import_module(package)
                names = module.__all__
                self.assertEqual(len(names), len(set(names)), names)
                for name in names:
                    self.assertIsNotNone(getattr(module, name), name)

    def test_root_names_its_packages_and_imports_them_on_use(self):
        self.assertIn("models", tfcvr.__all__)
        self.assertIn("models", dir(tfcvr))
        self.assertIs(tfcvr.models, importlib.import_module("tfcvr.models"))
        with self.assertRaisesRegex(AttributeError, "no attribute 'nope'"):
            tfcvr.nope  # noqa: B018

    def check_every_file_registers_and_exports(self, folder, decorator,
                                               registry, packages, minimum):
        declared = registered_classes(os.path.join(ROOT, *folder), decorator)
        self.assertGreaterEqual(len(declared), minimum)
        registered = {cls.__name__ for cls in registry.values()}
        for name in declared:
            with self.subTest(cls=name):
                self.assertIn(name, registered)
                for package in packages:
                    self.assertIn(name, package.__all__, package.__name__)

    def test_every_estimator_file_is_registered_and_exported(self):
        import tfcvr.models as models

        self.check_every_file_registers_and_exports(
            ("tfcvr", "models", "estimators"), "register_estimator",
            models.ESTIMATORS, [models], minimum=12,
        )

    def test_every_backbone_file_is_registered_and_exported(self):
        import tfcvr.layers as layers
        from tfcvr.layers import backbones

        self.check_every_file_registers_and_exports(
            ("tfcvr", "layers", "backbones"), "register_backbone",
            backbones.BACKBONES, [backbones, layers], minimum=5,
        )

    def test_packages_that_need_no_tensorflow_import_without_it(self):
        script = textwrap.dedent("""
            import importlib, importlib.abc, os, sys

            class Block(importlib.abc.MetaPathFinder):
                blocked = {"tensorflow", "keras", "jax"}

                def find_spec(self, name, path, target=None):
                    if name.split(".")[0] in self.blocked:
                        raise ImportError(f"{name} is blocked")

            block = Block()
            sys.meta_path.insert(0, block)
            for name in ("tfcvr", "tfcvr.features", "tfcvr.simulation",
                         "tfcvr.evaluation", "tfcvr.serving",
                         "tfcvr.training.params", "tfcvr.cli.main"):
                importlib.import_module(name)
            # JAX without TensorFlow: the models and the training callback
            # of `tfcvr bench train` on a JAX-only machine.
            block.blocked = {"tensorflow"}
            os.environ["KERAS_BACKEND"] = "jax"
            for name in ("tfcvr.models", "tfcvr.training.throughput_callback",
                         "tfcvr.training.pretraining"):
                importlib.import_module(name)
            print("imported")
        """)
        env = dict(os.environ, PYTHONPATH=ROOT)
        env.pop("KERAS_BACKEND", None)
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True,
            env=env, cwd=ROOT, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("imported", result.stdout)
