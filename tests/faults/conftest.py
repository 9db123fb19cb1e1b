import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402

from common_path import installed  # noqa: E402


def pytest_sessionstart(session):
    reason = installed.stale_install_reason()
    if reason:
        pytest.exit(reason, returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if outcome.get_result().failed:
        item.module.__dict__["_faults_failed"] = True
