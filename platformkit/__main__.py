import sys

from platformkit.cli import main

sys.exit(main())
