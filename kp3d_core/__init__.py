"""kp3d_core: the ROS-free library of kp3d (cameras, geometry, studio, models, training, inference)."""

__version__ = "0.1.0"
