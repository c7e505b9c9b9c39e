import sys

from ondo.cli.main import main

sys.exit(main())
