"""``/usr/bin/coalesce`` (and the Start menu / Applications entry): the desktop app, or a command if given."""

import sys

from coalesce_client.cli import main

sys.exit(main())
