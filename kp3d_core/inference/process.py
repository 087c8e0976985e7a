"""Process-wide settings for a run-time process (the node): what the defaults cost on a small shared CPU.

* :func:`reuse_large_blocks`: glibc serves a block above its mmap threshold with a fresh memory mapping
  and unmaps it on free, and trims free memory off the heap's top, so each first write of a new page costs
  a page fault. A process that receives 640x480 rgb8 images (921 kB each, allocated and freed by the ROS
  middleware and rclpy for every message) and makes image-sized temporaries per set pays that on every
  frame. Measured on the shared 2-core machine, 4 cameras x 640x480 rgb8 at 30 Hz into an rclpy subscriber
  with empty callbacks: 27 % of a core (2.3 ms per image) with glibc's defaults, 8 % with these thresholds.
  The price: freed blocks stay in the process, whose resident size is its high-water mark (reached in the
  first seconds), rather than going back to the OS at once.
* :func:`serial_opencv`: OpenCV's thread pool splits the detector's and the crops' small images across
  cores; on 2 cores, next to the network, the ROS executor and the middleware, the hand-offs cost more than
  they save: the estimator's CPU per 4-view set 21.6 ms with the pool (2.4 ms of it in the pool's thread),
  19.5 ms without.

Example::

    tune_process()     # first thing in the node's main()
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3


def reuse_large_blocks(mmap_threshold: int = 16 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Serve blocks below ``mmap_threshold`` bytes from the heap and keep up to ``trim_threshold`` bytes of free
    heap (glibc ``mallopt``; a fixed threshold also stops glibc's own raising of it). True where applied, False
    where the C library has no ``mallopt`` (nothing changes)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) & bool(mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))


def serial_opencv() -> None:
    """OpenCV functions run on the calling thread (``cv2.setNumThreads(1)``)."""
    import cv2

    cv2.setNumThreads(1)


def tune_process() -> None:
    """:func:`reuse_large_blocks` and :func:`serial_opencv`: for a process that runs the pipeline (the node)."""
    reuse_large_blocks()
    serial_opencv()
