"""Declares the Cython extension; everything else lives in pyproject.toml."""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

_debug = os.environ.get("ACCORD_CYTHON_DEBUG") == "1"

setup(
    ext_modules=cythonize(
        [
            Extension(
                "accord.media._forward",
                ["accord/media/_forward.pyx"],
                extra_compile_args=["-O0", "-g"] if _debug else ["-O2"],
            )
        ],
        compiler_directives={
            "language_level": "3",
            "boundscheck": _debug,
            "wraparound": _debug,
        },
        annotate=_debug,
    )
)
