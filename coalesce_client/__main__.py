import sys

from coalesce_client.cli import main

sys.exit(main())
