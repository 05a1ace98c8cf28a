"""tfcvr: entire-space post-click conversion-rate estimation in Keras 3."""

import os

from setuptools import find_packages
from setuptools import setup

HERE = os.path.abspath(os.path.dirname(__file__))


def _read(name):
    path = os.path.join(HERE, name)
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        return f.read()


def _version():
    for line in _read(os.path.join("tfcvr", "__init__.py")).splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("tfcvr/__init__.py has no __version__")


INSTALL_REQUIRES = [
    # tensorflow-serving-api pulls `tensorflow` itself, so depend on that
    # wheel (not tensorflow-cpu) or both land.
    "tensorflow>=2.21,<2.22",
    "tensorflow-serving-api>=2.21,<2.22",
    "keras>=3.12,<4",
    "keras-rs>=0.4,<0.5",
    # [tfrecord] brings crcmod: WriteToTFRecord fails without a CRC library.
    "apache-beam[tfrecord]>=2.70,<3",
    "numpy>=1.26,<2.5",
    "pandas>=2.2,<4",
    "pyarrow>=16,<27",
    "tqdm>=4.66,<5",
    "matplotlib>=3.8,<4",
]

EXTRAS_REQUIRE = {
    "test": [
        "pytest>=8,<10",
        "pytest-xdist>=3.5,<4",
        "scikit-learn>=1.4,<2",
        # Executes notebooks/*.ipynb as tests (brings nbclient and ipykernel).
        "nbmake>=1.5,<2",
    ],
    "jax": ["jax[cpu]>=0.4.34,<0.13"],
    # `tfcvr bench train --against deepctr`: DeepCTR runs on tf-keras
    # (Keras 2), selected by TF_USE_LEGACY_KERAS=1 in its own process only.
    "peers": ["deepctr>=0.9.4,<0.10", "tf-keras>=2.21,<2.22"],
}

setup(
    name="tfcvr",
    version=_version(),
    description=(
        "Keras 3 model zoo for post-click conversion-rate estimation in the "
        "entire exposure space: Beam preprocessing, every debiasing "
        "estimator, honest evaluation, TF Serving export."
    ),
    long_description=_read("README.md"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["tfcvr", "tfcvr.*", "beam_jobs", "beam_jobs.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["tfcvr=tfcvr.cli.main:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
