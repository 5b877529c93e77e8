"""``python -m eval``: DAVIS / YouTube-VOS evaluation without the rest of seggpt-vos."""

import sys

from .cli import main

sys.exit(main())
