"""`python -m service` is the same command line as `rotor`."""

import sys

from service.cli import main

sys.exit(main())
