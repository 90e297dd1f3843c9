"""``python -m sfmnet_plugin.faces OUT_DIR ...``: build the offline face set (see :mod:`.build`)."""
import sys

from sfmnet_plugin.faces.build import main

sys.exit(main())
