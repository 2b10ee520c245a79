import sys

from syshub.cli import main

sys.exit(main())
