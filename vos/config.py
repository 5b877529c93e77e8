"""Propagation settings that the command line needs before any model is loaded: imports no torch.

``seggpt-vos --help`` and ``seggpt-vos eval`` register every subcommand's options (with these choices and defaults)
without importing torch; the runtime modules (:mod:`vos.session`, :mod:`vos.windows`) take them from here.
"""

from __future__ import annotations

from typing import Literal

#: How objects are painted: "joint" (whole frames, all objects as colours in one pass: the paper), "per-object"
#: (whole frames, one white-on-black pass per object), "windows" (one pass per object in a window around it), or
#: "auto" (windows for low-resolution models, else joint; see ``PropagationConfig``).
Mode = Literal["auto", "joint", "per-object", "windows"]

#: Default window geometry (``WindowConfig``): window side = this x the object's longer box side ...
WINDOW_MARGIN = 1.5
#: ... and at least this x the frame's short side.
WINDOW_MIN_SIDE = 0.1
