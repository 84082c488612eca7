import sys

from s2f.cli import main

sys.exit(main())
