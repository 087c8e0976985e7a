"""Ghosts in a learnt background, told apart from the person by colour.

A background learnt while the person was in view holds the person where they stood (a ghost). When they move
away, ``|I - B|`` there is foreground that stays put: the room, revealed. A person who stops is foreground that
stays put too; what differs is WHICH of the two images shows the person: at a ghost the background does, where a
person stands still the image does. :class:`PersonRoomColours` keeps colour histograms of the person (the image
where its foreground moves, inside its box) and of the room (the background away from the person) for one camera;
:meth:`PersonRoomColours.ghost` marks the still foreground pixels whose background looks like the person and
whose image looks like the room, to be healed (learnt fast) whatever the person's keypoints say.

Example::

    colours = PersonRoomColours()
    colours.learn(image, background, person=moving & in_box, room=~near_box)
    heal = still_foreground & colours.ghost(image, background)
"""
from __future__ import annotations

import numpy as np

BITS = 3
"""Bits kept per channel: 8 levels, 512 colours (a few thousand pixels fill it; lighting drift stays in a bin)."""


def colour_index(pixels: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (...) int64 bin in [0, 2**(3 BITS))."""
    p = np.asarray(pixels).astype(np.int64) >> (8 - BITS)
    return (p[..., 0] << (2 * BITS)) | (p[..., 1] << BITS) | p[..., 2]


class PersonRoomColours:
    """Colour histograms of the person and of the room seen by one camera (see the module docstring).

    Args:
        decay: weight kept by the histograms at each :meth:`learn` (older colours fade: clothes stay, light drifts).
        margin: log-likelihood ratio (person over room) a background colour needs to count as the person's (the
            image's colour must then be more likely the room's than the person's).
        step: every ``step``-th pixel (in both directions) is learnt from.
    """

    def __init__(self, decay: float = 0.8, margin: float = 1.5, step: int = 2):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"PersonRoomColours: decay must be in [0, 1), got {decay}")
        self.decay, self.margin, self.step = float(decay), float(margin), int(step)
        n = 1 << (3 * BITS)
        self.person = np.zeros(n)
        self.room = np.zeros(n)

    @property
    def ready(self) -> bool:
        """Both histograms hold enough pixels (200 each) to judge colours."""
        return self.person.sum() >= 200 and self.room.sum() >= 200

    def learn(self, image: np.ndarray, background: np.ndarray, person: np.ndarray, room: np.ndarray) -> None:
        """Add the ``image`` colours under ``person`` (H, W) bool and the ``background`` colours under ``room``."""
        s = self.step
        n = self.person.size
        self.person *= self.decay
        self.room *= self.decay
        p = person[::s, ::s]
        if p.any():
            self.person += np.bincount(colour_index(image[::s, ::s][p]), minlength=n)
        r = room[::s, ::s]
        if r.any():
            self.room += np.bincount(colour_index(background[::s, ::s][r]), minlength=n)

    def log_ratio(self, pixels: np.ndarray) -> np.ndarray:
        """(...) log P(colour | person) - log P(colour | room) of (..., 3) uint8 pixels (add-one smoothing)."""
        p = (self.person + 1.0) / (self.person.sum() + self.person.size)
        r = (self.room + 1.0) / (self.room.sum() + self.room.size)
        return np.log(p / r)[colour_index(pixels)]

    def ghost(self, image: np.ndarray, background: np.ndarray, where: np.ndarray) -> np.ndarray:
        """(H, W) bool: pixels of ``where`` whose background looks like the person and image like the room (all
        False until :attr:`ready`)."""
        out = np.zeros(where.shape, bool)
        if not self.ready or not where.any():
            return out
        ys, xs = np.nonzero(where)
        out[ys, xs] = (self.log_ratio(background[ys, xs]) > self.margin) & (self.log_ratio(image[ys, xs]) < 0.0)
        return out
