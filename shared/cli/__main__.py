"""`python -m shared.cli`: the `tollgate` command."""

import sys

from shared.cli.main import main

sys.exit(main())
