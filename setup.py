"""Builds sknet's compiled kernels; everything else is in pyproject.toml.

Every ``sknet/_core/*.pyx`` becomes an extension module of the same name
(C headers next to it, ``sknet/_core/*.h``, are included by the ones that
name them).
The kernels call BLAS through ``scipy.linalg.cython_blas`` (scipy's own BLAS,
reached through function pointers at import), so nothing links a BLAS here.

A kernel that uses ``cython.parallel`` is compiled with OpenMP when the C
compiler supports it (checked by compiling a small program first); without
it, or with the environment variable ``SKNET_NO_OPENMP=1``, the same loops
run on one thread.
"""

import os
import shutil
import subprocess
import sys
import tempfile
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

_OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n == omp_get_max_threads() ? 0 : 1;
}
"""


def _openmp_flags():
    """``(compile_args, link_args)`` that turn OpenMP on, or None where it fails."""
    if os.environ.get("SKNET_NO_OPENMP", "").strip() not in ("", "0"):
        return None
    try:
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        compiler = new_compiler()
        customize_compiler(compiler)
    except Exception:  # no compiler to ask: build without OpenMP
        return None
    if compiler.compiler_type == "msvc":
        flags = (["/openmp"], [])
    elif sys.platform == "darwin":  # Apple's clang needs libomp and -Xpreprocessor
        flags = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])
    else:
        flags = (["-fopenmp"], ["-fopenmp"])
    work = tempfile.mkdtemp()
    try:
        source = os.path.join(work, "probe.c")
        with open(source, "w") as f:
            f.write(_OPENMP_PROBE)
        objects = compiler.compile([source], output_dir=work, extra_postargs=flags[0])
        program = os.path.join(work, "probe")
        compiler.link_executable(objects, program, extra_postargs=flags[1])
        subprocess.run([program], check=True, capture_output=True, timeout=60)
    except Exception:  # any failure: build the kernels without OpenMP
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return flags


def _extensions():
    probed = {}  # the OpenMP probe's answer, asked once
    for pyx in sorted(Path("sknet/_core").glob("*.pyx")):
        name = ".".join(pyx.with_suffix("").parts)
        compile_args, link_args = ["-O3"], []
        if "cython.parallel" in pyx.read_text():
            if "openmp" not in probed:
                probed["openmp"] = _openmp_flags()
            if probed["openmp"]:
                compile_args += probed["openmp"][0]
                link_args += probed["openmp"][1]
        yield Extension(name, [str(pyx)], extra_compile_args=compile_args,
                        extra_link_args=link_args, depends=_headers(pyx))


def _headers(pyx):
    """The C headers and Cython declarations next to ``pyx`` that it names, those
    they name, and so on (a change to any of them rebuilds the module)."""
    found, texts = set(), [pyx.read_text()]
    while texts:
        text = texts.pop()
        for h in [*pyx.parent.glob("*.h"), *pyx.parent.glob("*.pxd")]:
            if h.name not in found and h.name in text:
                found.add(h.name)
                texts.append(h.read_text())
    return sorted(str(pyx.parent / name) for name in found)


setup(ext_modules=cythonize(list(_extensions()), compiler_directives=DIRECTIVES))
