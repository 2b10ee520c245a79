import sys

from syshub.cli.main import main

sys.exit(main())
