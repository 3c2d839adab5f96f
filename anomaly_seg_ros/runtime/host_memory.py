"""Give the C heap back to the system when frames get smaller.

A large frame's buffers (the camera message, the RGB frame, the output maps and messages: about
300 MB for all outputs of a 4096x2160 frame) are freed once the next frame replaces them, but glibc
keeps freed memory in its heaps: after one large buffer is freed it raises its mmap threshold (up to
32 MiB), so buffers of camera size are then carved from the heap and stay resident after ``free``.
:class:`HeapTrimmer` calls ``malloc_trim(0)`` (every arena) after the first frame that is smaller
than the one before: rare, about 1 ms, and nothing while the frame size is steady. Where the C
library has no ``malloc_trim`` (musl, macOS) it does nothing.

The graphs run at fixed network sizes, so ONNX Runtime's and TensorRT's own buffers do not grow with
the camera frame; Fast DDS's sample buffers are freed when the config/fastdds_large_images.xml profile
is used (``DYNAMIC`` history memory).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache

__all__ = ['HeapTrimmer', 'trim_heap']


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        function = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


def trim_heap() -> bool:
    """Return free heap memory to the system now; False where the C library cannot."""
    function = _malloc_trim()
    if function is None:
        return False
    function(0)
    return True


class HeapTrimmer:
    """Trims the heap after a frame smaller than the one before it.

    ``trim`` is the function that releases memory (default :func:`trim_heap`).
    """

    def __init__(self, trim: Callable[[], object] = trim_heap) -> None:
        self._trim = trim
        self._previous = 0
        self.trims = 0

    def frame_done(self, pixels: int) -> bool:
        """Call after a frame's buffers are released or replaced; ``pixels``: what it held (input plus
        output pixels). Returns whether the heap was trimmed."""
        shrank = pixels < self._previous
        self._previous = pixels
        if shrank:
            self._trim()
            self.trims += 1
        return shrank
