"""A real one-node SLURM cluster for the workflow tests (Debian's slurm-wlm + munge).

Facts that worked here are in ../shared/notes/slurm-one-node.md. Job steps (srun
inside a batch job) find their configuration only at the default path, so the
cluster's slurm.conf is written to /etc/slurm/slurm.conf: only if no such file
exists (a machine's own SLURM configuration is never overwritten) and removed again
by ``stop``. State and logs live in a private folder. munged runs with the system
key (/etc/munge/munge.key), created only if there is none. Every daemon started
here is stopped by the PID in its pid file, never by name.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurm-wlm", "slurmctld", "slurmd", "slurm-client", "munge"]
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PID = Path("/run/munge/munged.pid")
SLURM_ETC = Path("/etc/slurm")
MARKER = "# written by ddpd tests/workflow/slurm_cluster.py"


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started on this machine."""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def ensure_installed() -> None:
    """Install slurm-wlm and munge with apt-get if they are missing (needs root)."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "squeue", "munged")):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("slurm-wlm/munge are not installed and we are not root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = _run(cmd, env=env, timeout=900)
        if result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")


def _start_munge() -> int | None:
    """Start munged as the munge user unless one already answers. Returns its PID if started."""
    if _run(["bash", "-c", "munge -n | unmunge"]).returncode == 0:
        return None
    for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge", "/etc/munge"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "munge", "munge")
    if not MUNGE_KEY.exists():
        MUNGE_KEY.write_bytes(os.urandom(1024))
    shutil.chown(MUNGE_KEY, "munge", "munge")
    MUNGE_KEY.chmod(0o400)
    result = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
    if result.returncode != 0:
        raise SlurmUnavailable(f"munged did not start: {result.stderr}")
    for _ in range(50):
        if _run(["bash", "-c", "munge -n | unmunge"]).returncode == 0:
            return int(MUNGE_PID.read_text())
        time.sleep(0.1)
    raise SlurmUnavailable("munged started but munge -n | unmunge fails")


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise SlurmUnavailable("cannot read MemTotal")


@dataclass
class SlurmCluster:
    """A running one-node cluster; ``env`` makes sbatch/squeue talk to it."""

    root: Path
    env: dict[str, str]
    pid_files: list[Path] = field(default_factory=list)
    munge_pid: int | None = None
    config_files: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the daemons this cluster started, by PID (slurmd, slurmctld, munged)."""
        pids = [int(p.read_text()) for p in self.pid_files if p.exists()]
        if self.munge_pid:
            pids.append(self.munge_pid)
        for pid in pids:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        for path in self.config_files:
            if path.exists() and path.read_text().startswith(MARKER):
                path.unlink()


def start_cluster(root: Path, cpus: int | None = None) -> SlurmCluster:
    """Write a private slurm.conf under ``root`` and start munged, slurmctld and slurmd.

    The node has a fake GPU (gres ``gpu:fake:1`` on /dev/null) so that rules with the
    resource ``gpu=1`` are scheduled with ``--gpus=1`` as on a real cluster.
    """
    ensure_installed()
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmd needs root")
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    mem = int(_mem_total_mb() * 0.9)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(exist_ok=True)
    conf = SLURM_ETC / "slurm.conf"
    gres = SLURM_ETC / "gres.conf"
    for path in (conf, gres):
        if path.exists() and not path.read_text().startswith(MARKER):
            raise SlurmUnavailable(f"{path} exists and is not ours: refusing to overwrite it")
    SLURM_ETC.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"""{MARKER}
ClusterName=ddpdtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
GresTypes=gpu
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={cpus} RealMemory={mem} Gres=gpu:fake:1 State=UNKNOWN
PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    )
    gres.write_text(f"{MARKER}\nNodeName={host} Name=gpu Type=fake File=/dev/null\n")
    env = dict(os.environ)
    cluster = SlurmCluster(root=root, env=env, config_files=[conf, gres])
    cluster.munge_pid = _start_munge()
    try:
        for daemon, pid in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            result = _run([f"/usr/sbin/{daemon}"], env=env)
            if result.returncode != 0:
                raise SlurmUnavailable(f"{daemon} did not start: {result.stderr}")
            cluster.pid_files.insert(0, root / pid)
        for _ in range(300):
            state = _run(["sinfo", "-h", "-N", "-o", "%T"], env=env).stdout.strip()
            if state == "idle":
                return cluster
            time.sleep(0.2)
        logs = (root / "log" / "slurmctld.log").read_text()[-2000:]
        raise SlurmUnavailable(f"node never became idle (state {state!r}); slurmctld log:\n{logs}")
    except BaseException:
        cluster.stop()
        raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
