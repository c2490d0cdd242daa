"""``python -m image_experiments`` is ``python -m image_experiments.run``."""

import sys

from image_experiments.run import main

sys.exit(main())
