import sys

from coalesce_cloud.cli import main

sys.exit(main())
