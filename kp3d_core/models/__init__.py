"""Keypoint discovery networks."""
