"""Process-wide settings of the node's process (kp3d_core.inference.process), checked in a child process."""
import subprocess
import sys


def test_tune_process_fixes_the_allocator_and_serialises_opencv():
    code = ("import cv2; from kp3d_core.inference.process import reuse_large_blocks, tune_process; "
            "tune_process(); print(reuse_large_blocks(), cv2.getNumThreads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "1"]  # glibc (Linux) takes the thresholds; OpenCV runs on the calling thread
