"""`python -m freight.shim --id ID --bundle DIR ...`: see freight.shim.main."""

import sys

from freight.shim.main import main

sys.exit(main(sys.argv[1:]))
