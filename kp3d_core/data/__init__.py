"""Multi-view training data: studio dataset folders, sessions folders of them (``sessions``, ``batches``) and rosbag2
recordings."""
