"""Builds sknet's compiled kernels; everything else is in pyproject.toml.

Every ``sknet/_core/*.pyx`` becomes an extension module of the same name.
The kernels call BLAS through ``scipy.linalg.cython_blas`` (scipy's own BLAS,
reached through function pointers at import), so nothing links a BLAS here.
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "nonecheck": False,
}


def _extensions():
    for pyx in sorted(Path("sknet/_core").glob("*.pyx")):
        name = ".".join(pyx.with_suffix("").parts)
        yield Extension(name, [str(pyx)], extra_compile_args=["-O3"])


setup(ext_modules=cythonize(list(_extensions()), compiler_directives=DIRECTIVES))
