"""``/usr/bin/coalesce-room``: the room display full screen, or ``--headless`` on a server."""

import sys

from coalesce_receiver.cli import main

sys.exit(main())
