"""facexai.allocator: on glibc, a large block comes from the heap (not its own mapping) once facexai is imported."""
import ctypes
import platform
import sys

import pytest
from fresh_process import run_json

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the thresholds are glibc's")

# how many bytes of a 64 MiB block glibc mapped on its own (mallinfo2's hblkhd grows by them)
CHILD = """
import ctypes, json
import facexai
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblkhd
block = libc.malloc(64 * 2**20)
print(json.dumps({"tuned": facexai.TUNED_ALLOCATOR, "mapped": libc.mallinfo2().hblkhd - before}))
"""


def test_large_blocks_come_from_the_heap_unless_defaults_are_asked_for():
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2")
    tuned = run_json(CHILD, env={"FACEXAI_GLIBC_MALLOC": None}, timeout=300)
    default = run_json(CHILD, env={"FACEXAI_GLIBC_MALLOC": "default"}, timeout=300)
    assert tuned == {"tuned": True, "mapped": 0}
    assert default["tuned"] is False and default["mapped"] >= 64 * 2**20
