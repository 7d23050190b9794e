import sys

from bel.cli import main

sys.exit(main())
