"""User-space enrichment: container ids from cgroup paths, and the CPU sampler's miner heuristic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from core.event import CPU_SAMPLE, ProcessEvent
from otel_agent.counters import Counters
from otel_agent.cpu import CpuSampler
from otel_agent.procfs import (
    Enricher,
    container_id,
    container_id_from_cgroup,
    effective_uid,
    effective_uid_from_file,
    read_comm,
    read_status,
    stdio_identity,
)
from testing import spawn_executed

ID = "3f4e8a9c1b2d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789ab"


@pytest.mark.parametrize("cgroup", [
    f"0::/system.slice/docker-{ID}.scope\n",  # docker, systemd cgroup driver
    f"12:memory:/docker/{ID}\n11:cpu:/docker/{ID}\n",  # docker, cgroup v1
    f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope\n",
    f"0::/kubepods/besteffort/pod1234/crio-{ID}\n",  # cri-o
    f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container\n",  # podman
])
def test_container_id_from_cgroup_paths(cgroup):
    assert container_id_from_cgroup(cgroup) == ID


def test_host_process_has_no_container_id():
    assert container_id_from_cgroup("0::/user.slice/user-0.slice/session-1.scope\n") == ""
    assert container_id(999_999_999) == ""  # no such process: empty, no error


def test_cpu_sampler_reports_a_process_burning_cpu():
    busy_loop = "import time\nend = time.time() + 8\nwhile time.time() < end: pass"
    burner = subprocess.Popen([sys.executable, "-c", busy_loop])
    reported = []
    # A low threshold: on a loaded 2-core CI machine a busy loop may get well under a full core.
    sampler = CpuSampler(interval=0.7, threshold_percent=25.0, counters=Counters())
    sampler.open()
    sampler.start(reported.extend)
    try:
        deadline = time.monotonic() + 6
        while not any(e.pid == burner.pid for e in reported) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sampler.stop()
        burner.kill()
        burner.wait()
    (event, *_) = [e for e in reported if e.pid == burner.pid]
    assert event.event_name == CPU_SAMPLE
    assert event.cpu_percent >= 25.0
    assert event.command_args[0] == sys.executable
    assert not any(e.cpu_percent < 25.0 for e in reported)


@pytest.mark.parametrize(("link", "identity"), [
    ("pipe:[4026532]", "pipe:4026532"),
    ("socket:[99]", "socket:99"),
    ("/dev/pts/3", "tty"),
    ("/dev/tty1", "tty"),
    ("/dev/console", "tty"),
    ("/dev/null", "file:/dev/null"),
    ("/var/log/app.log (deleted)", "file:/var/log/app.log (deleted)"),
    ("anon_inode:[eventfd]", ""),
    ("", ""),
])
def test_stdio_identity_of_fd_links(link, identity):
    assert stdio_identity(link) == identity


def test_effective_uid_is_the_owner_of_the_proc_directory():
    """The one-stat read agrees with /proc/PID/status, and says None once the process is gone."""
    child = subprocess.Popen(["/bin/sleep", "5"], user=65534)
    try:
        status = read_status(child.pid)
        assert status is not None and status.euid == status.uid == 65534
        assert effective_uid(child.pid) == 65534
        assert effective_uid(os.getpid()) == os.geteuid()
    finally:
        child.kill()
        child.wait()
    assert effective_uid(child.pid) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="a setuid-root file needs root to create")
def test_effective_uid_of_a_gone_process_from_its_executable(tmp_path):
    shutil.copy("/bin/true", tmp_path / "setuid-true")
    (tmp_path / "setuid-true").chmod(0o4755)
    shutil.copy("/bin/true", tmp_path / "plain-true")
    assert effective_uid_from_file(str(tmp_path / "setuid-true"), 1002) == 0
    assert effective_uid_from_file(str(tmp_path / "plain-true"), 1002) == 1002
    assert effective_uid_from_file("setuid-true", 1002) == 1002  # relative: its directory went with the process
    assert effective_uid_from_file(str(tmp_path / "missing"), 1002) == 1002


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_setuid_bit_on_a_nosuid_mount_grants_nothing(tmp_path):
    mount_point = tmp_path / "nosuid"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "nosuid,size=4m", "tmpfs", str(mount_point)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copy("/bin/true", mount_point / "true")
        (mount_point / "true").chmod(0o4755)
        assert effective_uid_from_file(str(mount_point / "true"), 1002) == 1002
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_parent_that_exited_is_named_from_its_own_exec():
    """A shell running a short script is often gone when its children are read: its name comes from its
    own exec, completed while it ran."""
    enricher = Enricher()
    parent = spawn_executed(["/bin/sleep", "30"])
    try:
        enricher.complete(ProcessEvent(executable_name="", command_line="", pid=parent.pid))
    finally:
        parent.kill()
        parent.wait()
    assert read_comm(parent.pid) == ""
    child = ProcessEvent(executable_name="", command_line="", pid=os.getpid(), parent_pid=parent.pid)
    enricher.complete(child)
    assert child.parent_name == "sleep"
