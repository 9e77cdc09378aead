"""``python -m labkit.backends.sim --home DIR``: run the lab daemon of one home (``labkit up`` does this)."""

import sys

from .daemon import main

sys.exit(main())
