"""spark-submit's entry point: the same as `python -m imagematching` (the package comes from the runtime).

Its own folder lands first on sys.path, so it lives at the project root rather than inside the
package, where modules such as imagematching/io.py would shadow the standard library's.
"""

import sys

from imagematching.cli import main

sys.exit(main())
