"""A one-node Slurm cluster on 127.0.0.1 for tests: munged, slurmctld and
one slurmd from Debian's munge, slurmctld, slurmd and slurm-client, with
every file (key, socket, slurm.conf, state, spool, logs) in a fresh folder
under /tmp (short: the munge socket path must fit a sockaddr_un). No
system file is read or changed beyond the installed programs; the ports
are ones the kernel reported free. Clients find the cluster through
SLURM_CONF, which start() sets in os.environ (and stop() removes).

Slurm runs as root here (SlurmUser=root, SlurmdUser=root): slurmd starts
jobs as the submitting user, which needs root. Process tracking is
proctrack/linuxproc and task/none, so no cgroups are needed.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

# The node offers this many CPUs whatever the machine has (config_overrides),
# so that a 3-task array asking for 2 CPUs a task runs at once: tests
# measure nothing.
NODE_CPUS = 8
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")


class Unavailable(Exception):
    """The daemons cannot start here (not installed, not root, refused)."""


def _free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)\n"


class LocalSlurm:
    def __init__(self):
        self.dir = None
        self.procs = []  # (name, Popen, log path), in start order
        self.conf = None
        self.bin = {}  # program name -> path

    def _daemon(self, name, argv, log):
        out = open(log, "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        self.procs.append((name, p, log))
        return p

    def _until(self, what, ok, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p, log in self.procs:
                if p.poll() is not None:
                    raise Unavailable(f"{name} exited with status {p.returncode} while waiting for {what}:\n"
                                      + _tail(log))
            if ok():
                return
            time.sleep(0.2)
        raise Unavailable(f"no {what} after {timeout} s:\n" + "".join(
            f"--- {name} ({log}):\n{_tail(log)}" for name, _, log in self.procs))

    def start(self, timeout=30):
        search = os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin"
        self.bin = {d: shutil.which(d, path=search) for d in PROGRAMS}
        missing = [d for d, path in self.bin.items() if not path]
        if missing:
            raise Unavailable(f"not installed: {', '.join(missing)} (scripts/setup installs munge, slurmctld, "
                              "slurmd, slurm-client)")
        if os.geteuid() != 0:
            raise Unavailable("not root: slurmd must start jobs as their user")
        self.dir = d = tempfile.mkdtemp(prefix="rtlab-slurm-", dir="/tmp")
        os.chmod(d, 0o755)  # munged wants every folder above its socket searchable by all
        for sub, mode in (("munge", 0o755), ("munge-key", 0o700), ("state", 0o755), ("spool", 0o755)):
            os.mkdir(os.path.join(d, sub), mode)
        try:
            self._start_munge()
            self._start_slurm()
        except BaseException:
            self.stop()
            raise

    def _start_munge(self):
        d = self.dir
        key = os.path.join(d, "munge-key", "munge.key")
        r = subprocess.run([self.bin["mungekey"], "--create", f"--keyfile={key}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable(f"mungekey failed: {r.stderr.strip()}")
        self.munge_socket = os.path.join(d, "munge", "munge.socket")
        self._daemon("munged", [self.bin["munged"], "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                                f"--log-file={d}/munge-key/munged.log", f"--pid-file={d}/munge/munged.pid",
                                f"--seed-file={d}/munge-key/munged.seed"], os.path.join(d, "munged.out"))
        self._until("munge socket", lambda: os.path.exists(self.munge_socket), 10)

    def _start_slurm(self):
        d = self.dir
        host = socket.gethostname()
        ctld_port, slurmd_port = _free_ports(2)
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=rtlabtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=2
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory=500 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        os.environ["SLURM_CONF"] = self.conf
        self._daemon("slurmctld", [self.bin["slurmctld"], "-D", "-i", "-f", self.conf], os.path.join(d, "slurmctld.out"))
        self._daemon("slurmd", [self.bin["slurmd"], "-D", "-N", host, "-f", self.conf], os.path.join(d, "slurmd.out"))

        def idle():
            r = subprocess.run([self.bin["sinfo"], "-h", "-o", "%t"], capture_output=True, text=True)
            return r.returncode == 0 and r.stdout.strip() == "idle"
        self._until("idle node in sinfo", idle, 30)

    def stop(self):
        """Cancels every job and stops every daemon this object started
        (SIGTERM, then SIGKILL after 10 s); removes the folder."""
        if self.conf and any(p.poll() is None for n, p, _ in self.procs if n == "slurmctld"):
            subprocess.run([self.bin["scancel"], "--full", "--user=root"], capture_output=True, timeout=30)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                r = subprocess.run([self.bin["squeue"], "-h"], capture_output=True, text=True, timeout=30)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.3)
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
        if self.conf and os.environ.get("SLURM_CONF") == self.conf:
            del os.environ["SLURM_CONF"]
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
