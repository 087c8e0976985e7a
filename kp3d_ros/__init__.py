"""kp3d_ros: thin ROS 2 adapters over kp3d_core (node, message conversion, bag replay, demo)."""
