"""kp3d: an ament_python package (colcon) that also installs with plain pip into a virtual environment."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "kp3d_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Unsupervised multi-camera 3D human keypoints: offline training and a real-time ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["kp3d_core", "kp3d_core.*", "kp3d_ros", "kp3d_ros.*", "training", "training.*"]),
    package_data={"kp3d_core": ["assets/*", "assets/**/*", "studio/joint_maps/*.yaml"], "training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", [f for f in glob("config/*") if not f.endswith("~")]),
    ],
    install_requires=[
        "numpy", "scipy", "opencv-python-headless", "onnx", "onnxruntime", "rosbags>=0.10.11",
        "PyYAML", "tqdm", "matplotlib", "psutil", "torch", "scikit-fmm",
    ],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "kp3d = kp3d_ros.cli:main",
            "multicam_node = kp3d_ros.node:main",
        ],
    },
)
