"""``python -m sfmnet_plugin.demo OUT_DIR ...``: build the offline face set (see :mod:`.face_set`)."""
import sys

from sfmnet_plugin.demo.face_set import main

sys.exit(main())
