"""Experiment configs (``training/configs/*.yaml``) and recipes for kp3d models."""
