import sys

from coalesce_cloud.entry import main

sys.exit(main())
