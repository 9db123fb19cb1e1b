"""What the fault modules' pytest fixtures share: the network (skipped with the reason when namespaces, autoctl
or another requirement is missing) and one formation per module, replaced on fresh namespaces when a scenario
left it unhealthy; its work directories are removed afterwards unless something failed (or
AUTOFAILOVER_FAULTS_KEEP is set)."""

import os
import shutil
import tempfile

import pytest

import cluster as clustermod
import netns


def module_net(*requirements):
    """For a module-scoped `net` fixture (`yield from module_net()`): a netns.Net, torn down afterwards.
    requirements: functions returning None or why this module cannot run (pytest.skip)."""
    reason = netns.netns_unavailable()
    for requirement in requirements:
        reason = reason or requirement()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(clustermod.AUTOCTL):
        pytest.skip(f"autoctl not found at {clustermod.AUTOCTL} (set AUTOCTL)")
    n = netns.Net()
    try:
        yield n
    finally:
        n.teardown()


def keep_or_remove(request, workdirs):
    """Work directories (logs, data: hundreds of MB) are kept only when something failed."""
    keep = request.module.__dict__.get("_faults_failed") or os.environ.get("AUTOFAILOVER_FAULTS_KEEP")
    for wd in workdirs:
        if keep:
            print(f"\nkept {wd}")
        else:
            shutil.rmtree(wd, ignore_errors=True)


class FormationHolder:
    """The module's formation: build(net, workdir) makes it, .create(nodes=3) starts it (returns seconds)."""

    def __init__(self, net, build, prefix, label):
        self.net = net
        self.build = build
        self.prefix = prefix
        self.label = label
        self.current = None
        self.workdirs = []

    def new(self):
        if self.current is not None:
            self.current.teardown()
            self.net.teardown()
            self.net.__init__()            # fresh namespaces (same object: the fixture still tears it down)
        workdir = tempfile.mkdtemp(prefix=self.prefix)
        self.workdirs.append(workdir)
        self.current = self.build(self.net, workdir)
        took = self.current.create(nodes=3)
        print(f"\n[setup] {self.label} in namespaces healthy after {took:.1f}s ({workdir})")
        return self.current

    def get(self, back_to_health):
        """The formation for the next scenario: links healed, back_to_health(formation) waits for it (raises
        AssertionError when it does not come back: then a new one is built)."""
        if self.current is None:
            return self.new()
        self.net.heal_all()
        try:
            back_to_health(self.current)
        except AssertionError as e:
            print(f"\n[setup] previous scenario left the formation unhealthy; recreating it\n{str(e)[:1500]}")
            return self.new()
        return self.current

    def close(self, request):
        if self.current is not None:
            self.current.teardown()
        keep_or_remove(request, self.workdirs)
