"""`python -m pfml_core ...`: see pfml_core.cli."""
import sys

from pfml_core.cli import main

sys.exit(main())
