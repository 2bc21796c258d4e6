import sys

from imagematching.cli import main

sys.exit(main())
