"""``python -m stress.bench``: the same as ``rcu-pgdat-stress bench``."""

import sys

from . import main

sys.exit(main())
