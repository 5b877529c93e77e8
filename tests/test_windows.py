"""Window geometry of the object-window mode (``vos.windows``), on hand-made masks."""

from __future__ import annotations

import numpy as np

from vos.windows import object_window


def test_object_window_is_a_square_around_the_box_kept_inside_the_frame():
    mask = np.zeros((100, 200), bool)
    mask[10:20, 20:40] = True  # box 10 x 20 px, centre (15, 30)
    assert object_window(mask, 1.5, 0.1) == (0, 15, 30, 30)  # 30 px square, moved down to fit the top edge
    assert object_window(mask, 1.5, 0.5) == (0, 5, 50, 50)  # at least half the short side
    assert object_window(mask, 10.0, 0.1) == (0, 0, 100, 200)  # larger than the frame: cut to it
    mask[:] = False
    mask[90:100, 190:200] = True
    assert object_window(mask, 2.0, 0.1) == (80, 180, 20, 20)  # moved up and left into the corner
    assert object_window(np.zeros((100, 200), bool), 1.5, 0.1) is None
