"""``python -m imagegateway_server.cli``: the ``imagegw`` command without the console script."""

import sys

from imagegateway_server.cli import main

sys.exit(main())
