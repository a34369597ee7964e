"""Every build of the small-product kernel, not only the one the loader picks here.

``_small_gemm.h`` is compiled for AVX-512, for AVX2 with FMA and for the
baseline, and the loader runs one of them: the suite's other tests check only
that one on a given processor. ``small_gemm_check.c`` compiles the header as
one build (``SK_CLONES`` empty, one ``-march``) and compares it with a naive
product over every remainder of its tiles and panels; here it is built and run
for each build this processor can run. Built as the extension is, the loader
choosing, it also compares the 512-bit tiles with the 256-bit ones bit for
bit where the processor runs x86-64-v4 code.
"""

import pathlib
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig

import pytest

import sknet

CORE = pathlib.Path(sknet.__file__).parent / "_core"
CHECK = pathlib.Path(__file__).with_name("small_gemm_check.c")

# -march and the processor flags (/proc/cpuinfo) that build needs
BUILDS = {
    "x86-64": (),
    "x86-64-v3": ("avx2", "fma", "bmi2", "f16c", "movbe"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}


def _compiler():
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    return cc if cc and shutil.which(cc[0]) else None


def _cpu_flags():
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return set(line.partition(":")[2].split())


needs_gcc_x86_linux = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() == "x86_64"
         and (CORE / "_small_gemm.h").exists() and _compiler() is not None),
    reason="builds the header with a C compiler for x86-64 Linux")


@needs_gcc_x86_linux
@pytest.mark.parametrize("march", list(BUILDS))
def test_each_build_of_the_small_product_kernel_matches_a_naive_product(march, tmp_path):
    flags = _cpu_flags()
    if flags is None or not set(BUILDS[march]) <= flags:
        pytest.skip(f"this processor does not run {march} code")
    exe = tmp_path / "check"
    build = subprocess.run([*_compiler(), "-O2", f"-march={march}", "-DSK_CLONES=",
                            f"-I{CORE}", str(CHECK), "-o", str(exe), "-lm"],
                           capture_output=True, text=True, timeout=120)
    if build.returncode != 0 and "march" in build.stderr:
        pytest.skip(f"the compiler does not know -march={march}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith(", 0 values off"), run.stdout


@needs_gcc_x86_linux
def test_the_512_bit_tiles_give_the_256_bit_tiles_values_bit_for_bit(tmp_path):
    flags = _cpu_flags()
    if flags is None or not set(BUILDS["x86-64-v4"]) <= flags:
        pytest.skip("this processor does not run x86-64-v4 code")
    exe = tmp_path / "check"
    build = subprocess.run([*_compiler(), "-O3", f"-I{CORE}", str(CHECK), "-o", str(exe),
                            "-lm"], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    if len(lines) < 2:
        pytest.skip("the compiler builds no 512-bit tiles chosen at load time")
    compared, total = lines
    assert compared.split()[0] == total.split()[0], run.stdout
    assert total.endswith(", 0 values off"), run.stdout
