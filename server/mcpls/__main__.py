"""`python -m mcpls` is `mcpls`."""

import sys

from mcpls.cli import main

sys.exit(main())
