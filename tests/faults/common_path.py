"""Makes tests/common importable from tests/faults (writer, checker, installed)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402,F401
import writer  # noqa: E402,F401
import installed  # noqa: E402,F401
