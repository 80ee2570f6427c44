"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd, started in the
foreground from a temporary folder (no systemd), and stopped by their process ids.

Debian's ``slurm-wlm`` and ``munge`` are installed with apt-get where ``slurmctld`` is missing.
The cluster keeps no accounting (no slurmdbd): job states come from ``squeue``, which remembers a
finished job for ``MinJobAge`` seconds. Clients find it through ``SLURM_CONF`` (:attr:`Cluster.env`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"
NODE = "dpmnode"
PARTITION = "dpm"


@dataclass
class Cluster:
    """A running cluster: its folder, the environment its clients need, its daemons."""
    folder: Path
    env: dict[str, str]
    daemons: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command (sinfo, squeue, scontrol, sbatch) against this cluster."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def logs(self) -> str:
        """The daemons' log files, last lines: for an assertion's message."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                         for p in sorted(self.folder.glob("*.log")))


def ensure_installed() -> None:
    """apt-get install slurm-wlm and munge, unless slurmctld is already there."""
    if shutil.which("slurmctld", path=SBIN):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"],
                   env=env, check=True, capture_output=True, timeout=600)


@contextmanager
def cluster(cpus: int = 2, memory_mb: int = 8000) -> Iterator[Cluster]:
    """Start a single-node cluster (``cpus`` cores, ``memory_mb`` MB, no GPU) and wait until its node
    is idle; on exit cancel every job, stop the daemons by pid and remove the folder."""
    ensure_installed()
    # not pytest's tmp_path: munged, running as the munge user, must reach its folder
    folder = Path(tempfile.mkdtemp(prefix="dpm-slurm-"))
    folder.chmod(0o755)
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf"),
           "PATH": os.pathsep.join([str(folder / "bin"), os.environ.get("PATH", ""), SBIN])}
    running = Cluster(folder, env)
    try:
        _write_config(folder, cpus, memory_mb)
        running.daemons.append(_start_munged(folder))
        for daemon in (["slurmctld", "-D", "-i"], ["slurmd", "-D", "-N", NODE]):
            running.daemons.append(_start(running, daemon))
        _wait_until_idle(running)
        yield running
    finally:
        _stop(running)
        shutil.rmtree(folder, ignore_errors=True)


def _write_config(folder: Path, cpus: int, memory_mb: int) -> None:
    munge = folder / "munge"
    munge.mkdir()
    munge.chmod(0o711)  # munged: its socket's folder must be searchable by all, no more
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    shutil.chown(munge, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    for name in ("state", "spool"):
        (folder / name).mkdir()
    ctld_port, slurmd_port = _free_ports(2)
    host = socket.gethostname()
    (folder / "slurm.conf").write_text(f"""\
ClusterName=dpmtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge / 'munge.socket'}
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# GPUs are a resource here, as on a cluster with GPU nodes; this node has none
GresTypes=gpu
MailProg=/bin/true
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
""")
    _write_srun(folder)


def _write_srun(folder: Path) -> None:
    """An ``srun`` first on the jobs' PATH that finds this cluster: snakemake-executor-plugin-slurm-jobstep
    drops every SLURM_* variable but the job's identity, SLURM_CONF too, before its ``srun`` (a
    cluster keeps slurm.conf where every client looks first, /etc/slurm, which a test must not touch)."""
    srun = folder / "bin" / "srun"
    srun.parent.mkdir()
    srun.write_text(f"#!/bin/sh\nSLURM_CONF={folder / 'slurm.conf'} exec {shutil.which('srun', path=SBIN)} \"$@\"\n")
    srun.chmod(0o755)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_munged(folder: Path) -> subprocess.Popen:
    munge = folder / "munge"
    command = ["munged", "--foreground", f"--key-file={munge / 'munge.key'}",
               f"--socket={munge / 'munge.socket'}", f"--pid-file={munge / 'munged.pid'}",
               f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"]
    with open(folder / "munged.stderr.log", "w") as log:
        daemon = subprocess.Popen(command, executable=shutil.which("munged", path=SBIN), user="munge",
                                  group="munge", extra_groups=[], stdout=subprocess.DEVNULL, stderr=log)
    _wait_for(lambda: (munge / "munge.socket").exists() or daemon.poll() is not None, 20)
    if daemon.poll() is not None:
        raise RuntimeError(f"munged exited: {(folder / 'munged.stderr.log').read_text()}")
    return daemon


def _start(running: Cluster, command: list[str]) -> subprocess.Popen:
    with open(running.folder / f"{command[0]}.stderr.log", "w") as log:
        return subprocess.Popen([shutil.which(command[0], path=SBIN), *command[1:]], env=running.env,
                                stdout=log, stderr=subprocess.STDOUT)


def _wait_until_idle(running: Cluster) -> None:
    def idle() -> bool:
        if any(d.poll() is not None for d in running.daemons):
            raise RuntimeError(f"a SLURM daemon exited:\n{running.logs()}")
        state = running.run("sinfo", "--noheader", "--format=%t", check=False).stdout.strip()
        return state == "idle"
    if not _wait_for(idle, 60):
        raise RuntimeError(f"the node did not become idle:\n{running.logs()}")


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _stop(running: Cluster) -> None:
    """Cancel what is left in the queue, let slurmd end its job steps, then stop each daemon by pid
    (slurmd, slurmctld, munged): SIGTERM, and SIGKILL after 20 s."""
    if len(running.daemons) == 3:
        running.run("scancel", f"--partition={PARTITION}", check=False)
        _wait_for(lambda: not running.run("squeue", "--noheader", "--states=RUNNING,COMPLETING,PENDING",
                                          check=False).stdout.strip(), 30)
    for daemon in reversed(running.daemons):
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
