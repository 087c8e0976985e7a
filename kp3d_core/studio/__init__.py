"""The synthetic multi-camera studio: bodies, motion, rendering, datasets and bags."""
