import sys

from image_experiments.report import main

sys.exit(main())
