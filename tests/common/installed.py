"""The e2e and fault tests run the INSTALLED autoctl as the unprivileged test user: the build tree may be
in a directory that user cannot enter (a clone in /root, mode 0700). ctest passes both paths; a test run
refuses to start when the installed binary is not the one just built, so that a stale install (or another
worktree's) is never what gets tested. `make check` installs before it runs ctest."""

import filecmp
import os


def stale_install_reason():
    """None when $AUTOCTL is the binary built at $AUTOFAILOVER_BUILT_AUTOCTL (or nothing to compare)."""
    built = os.environ.get("AUTOFAILOVER_BUILT_AUTOCTL")
    installed = os.environ.get("AUTOCTL")
    if not built or not installed or os.path.realpath(built) == os.path.realpath(installed):
        return None
    if not os.path.exists(installed):
        return f"{installed} is not installed; run `make install` (make check does) before ctest"
    if not filecmp.cmp(built, installed, shallow=False):
        return (f"{installed} is not the autoctl just built ({built}); run `make install` (make check does) "
                f"before ctest")
    return None
