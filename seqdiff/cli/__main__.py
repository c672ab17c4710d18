"""``python -m seqdiff.cli``: the `seqdiff` command."""

import sys

from seqdiff.cli import main

sys.exit(main())
