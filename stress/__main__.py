"""``python -m stress``: the same as the ``rcu-pgdat-stress`` console script."""

import sys

from .cli import main

sys.exit(main())
