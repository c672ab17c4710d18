"""``python -m seqdiff.data.fetch``."""

import sys

from seqdiff.data.fetch.cli import main

sys.exit(main())
