"""`python -m climbstream` runs the CLI."""

import sys

from climbstream.cli import main

sys.exit(main())
