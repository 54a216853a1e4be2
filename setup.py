"""Installs the ``repurpose`` package and its model zoo (the distribution ``repurpose-mxnet``).

The name ``repurpose`` on the public package index belongs to another project (which also
imports as ``repurpose``), so this distribution is ``repurpose-mxnet``; the import name and
the ``repurpose`` command are unchanged. Install from a checkout, with the project's
constraints so that pip resolves the MXNet 1.9.1 stack from wheels without backtracking::

    pip install -c constraints.txt .            # or '.[test,onnx]', '.[dask]', '.[docs]'
"""
import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "repurpose" / "_version.py").read_text(), re.M
).group(1)

setup(
    name="repurpose-mxnet",
    version=VERSION,
    description="Transfer learning on Apache MXNet: repurpose pretrained networks for new tasks.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    # numpy 1.23.5 has no wheels for Python 3.12 and scikit-learn 1.7.2 needs 3.10 or later
    # (constraints.txt); mxnet 1.9.1's wheels are Linux x86_64 / aarch64 and Intel macOS only.
    python_requires=">=3.10,<3.12",
    # Every package under repurpose/ (found, so a new subpackage cannot be forgotten), plus
    # the model zoo.
    packages=find_packages(include=["repurpose", "repurpose.*"]) + ["repurpose.model_zoo"],
    # The top-level model_zoo/ folder (weights, model cards, training scripts) is installed
    # as the package repurpose.model_zoo and found with importlib.resources.
    package_dir={"repurpose.model_zoo": "model_zoo"},
    package_data={"repurpose.model_zoo": ["*/*.json", "*/*.params", "*.md", "scripts/*.py"]},
    include_package_data=False,
    install_requires=[
        "mxnet==1.9.1",
        "gluoncv>=0.10.5",
        "numpy>=1.16,<1.24",
        "scipy",
        "scikit-learn",
        "GPy",
        # One BLAS thread while the optimiser computes a suggestion (repurpose/bo/_threads.py);
        # scikit-learn installs it too.
        "threadpoolctl>=3",
        "tqdm",
        "PyYAML",
        "matplotlib",
        # OS-level locks on journals, job folders, stores (gluoncv installs it too).
        "portalocker>=2",
    ],
    extras_require={
        "onnx": ["onnx==1.14.1", "protobuf<4"],
        # nbclient + ipykernel execute the demo notebooks (tests/integration/test_notebooks.py).
        # onnxruntime is the reference the ONNX tests and benchmarks compare against (the
        # same file, run by both); its 1.26 wheels need Python 3.11 or later, and have none
        # for Intel macOS.
        "test": ["pytest>=7", "hypothesis>=6",
                 "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6",
                 "dask[distributed]>=2024.1",
                 "onnxruntime==1.26.0; python_version >= '3.11' and sys_platform == 'linux'"],
        # Scale-out: sharded extraction and parallel tuning on a Dask cluster.
        "dask": ["dask[distributed]>=2024.1"],
        # The documentation site (docs/conf.py): MyST markdown and notebooks (rendered, not
        # executed; no pandoc needed), the API reference from numpydoc docstrings.
        "docs": ["sphinx>=7.2,<8.2", "myst-nb>=1.1,<1.4", "numpydoc>=1.7,<2"],
    },
    entry_points={"console_scripts": ["repurpose=repurpose.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS :: MacOS X",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
