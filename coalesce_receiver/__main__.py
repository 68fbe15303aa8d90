import sys

from coalesce_receiver.cli import main

sys.exit(main())
