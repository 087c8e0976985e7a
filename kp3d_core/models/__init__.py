"""Keypoint discovery networks: the exported KeypointNet and the training-only DiscoveryModel."""
from .keypoint_net import KeypointNet, load_keypoint_net, soft_argmax

__all__ = ["KeypointNet", "load_keypoint_net", "soft_argmax"]
