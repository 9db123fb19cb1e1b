"""Fixtures shared by the end-to-end scenarios. Each module gets one real
formation (module scope: creating one takes seconds) that is torn down by
PID even when a test fails; its work directory is kept on failure."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from formation import Formation  # noqa: E402
import installed  # noqa: E402  (tests/common, on the path through formation)

# Ports of the e2e range (6100-6499); ctest gives each module its own base.
DEFAULT_PORT_BASE = int(os.environ.get("AUTOFAILOVER_E2E_PORT_BASE", "6200"))


def pytest_sessionstart(session):
    reason = installed.stale_install_reason()
    if reason:
        pytest.exit(reason, returncode=1)


def pytest_addoption(parser):
    parser.addoption("--keep-workdir", action="store_true", help="keep the formation's directory after the run")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.module.__dict__["_e2e_failed"] = True


@pytest.fixture(scope="module")
def formation_factory(request):
    """Returns create(port_offset=0, trust=False) -> Formation; tears all of them down."""
    created = []
    workdirs = []

    def create(port_offset=0, trust=False):
        workdir = tempfile.mkdtemp(prefix=f"autofailover-e2e-{request.module.__name__}-")
        workdirs.append(workdir)
        f = Formation(workdir, DEFAULT_PORT_BASE + port_offset, trust=trust)
        created.append(f)
        return f

    yield create
    for f in created:
        f.teardown()
    failed = request.module.__dict__.get("_e2e_failed", False)
    for workdir in workdirs:
        if failed or request.config.getoption("--keep-workdir"):
            print(f"\nkept {workdir} (logs of the failed run)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
