"""fix_mmap_threshold: glibc hands large freed blocks back to the system every time, so a model's
peak memory does not depend on which blocks the heap happened to keep (docs/benchmarks.md,
memory planner). Each check runs in a fresh interpreter: this one's threshold is already set."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from edgeagent.backends import llamacpp
from edgeagent.backends.llamacpp import fix_mmap_threshold

GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# Frees an 8 MiB block (mmapped: above the threshold), then asks for 4 MiB and says whether it
# came from the heap (below the program break) or from a mapping of its own.
PROBE = """
import ctypes, sys
from edgeagent.backends.llamacpp import fix_mmap_threshold
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc.free(libc.malloc(8 << 20))
block = libc.malloc(4 << 20)
print("heap" if block < libc.sbrk(0) else "mmap")
"""


def _where_4_mib_goes(mode: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    return out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_with_the_threshold_fixed_a_large_block_after_a_free_is_still_mapped_on_its_own():
    assert _where_4_mib_goes("glibc default") == "heap"  # the threshold rose to 8 MiB
    assert _where_4_mib_goes("fixed") == "mmap"  # freed back to the system, whatever came before


def test_a_c_library_other_than_glibc_is_left_alone(monkeypatch):
    class NotGlibc:  # musl's and macOS's libc have no gnu_get_libc_version (nor this mallopt)
        def __init__(self, name):
            pass

    monkeypatch.setattr(llamacpp.ctypes, "CDLL", NotGlibc)
    assert fix_mmap_threshold() is False


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_glibc_accepts_the_setting():
    assert fix_mmap_threshold() is True
