"""Multi-view training data: studio dataset folders and rosbag2 recordings."""
