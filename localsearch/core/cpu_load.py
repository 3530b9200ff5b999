"""Whether other work competes for the CPU, read where the operating system reports it.

The embedding engine's threads can wait for each other by spinning or by sleeping.
Spinning was 1.19x and 1.29x as fast when the cores were free (bench/results/
engine_throughput.json, -repeat.json) and several times slower when they are not (a
spinning thread holds a core its partner needs), so the engine asks this module before
it picks one.

Two readings. Once the engine runs, the best one is its own: Linux's schedstat says how
long the engine's threads were ready to run but waited for a core (RunDelayProbe).
Work this app does beside the engine (a writer thread) barely shows there, while a
program that takes cores from it does at once. Before that, whole-machine figures have
to do: Linux's CPU pressure (/proc/pressure/cpu, kernel 4.20+: the share of the last 10
seconds in which some runnable task waited for a core), elsewhere the load average less
the engine's own threads. Where nothing is known the answer is "busy": sleeping waiters
are the safe choice.
"""

from __future__ import annotations

import os
from pathlib import Path

CPU_PRESSURE = Path("/proc/pressure/cpu")
# Above this share of the last 10 s with a task waiting for a core, the cores are shared.
BUSY_PRESSURE_PERCENT = 10.0
# Above this share of the engine's ready time spent waiting for a core, the cores are
# shared. Alone on free cores it measured 2-3 % (wake-ups, this app's own writer); a
# program competing for one of two cores makes it about a third.
BUSY_RUN_DELAY = 0.10


def cpu_pressure(path: Path = CPU_PRESSURE) -> float | None:
    """The "some avg10" figure of Linux's pressure stall information, in percent."""
    try:
        first = path.read_text(encoding="ascii").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    fields = dict(part.split("=", 1) for part in first.split()[1:] if "=" in part)
    try:
        return float(fields["avg10"])
    except (KeyError, ValueError):
        return None


def cores_busy(own_threads: int, *, own_running: bool, path: Path = CPU_PRESSURE) -> bool:
    """Whether other work competes for the cores an engine of `own_threads` threads uses.

    own_running: the engine itself has been computing lately, so the load average
    counts its threads (pressure does not: spinning alone on free cores stalls nobody).
    """
    pressure = cpu_pressure(path)
    if pressure is not None:
        return pressure >= BUSY_PRESSURE_PERCENT
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return True
    cores = os.cpu_count() or 1
    others = load - (own_threads if own_running else 0)
    return others > max(0, cores - own_threads) + 0.5


def thread_times(pid: int, proc: Path = Path("/proc")) -> tuple[float, float] | None:
    """(seconds run, seconds ready but waiting for a core), summed over the threads of
    process `pid`, from Linux's /proc/<pid>/task/*/schedstat; None where not reported."""
    ran = waited = 0
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text(encoding="ascii").split()
            ran += int(fields[0])
            waited += int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended between the listing and the read
    if not tasks or ran == 0:
        return None
    return ran / 1e9, waited / 1e9


class RunDelayProbe:
    """The share of a process's ready time spent waiting for a core, between readings."""

    def __init__(self, pid: int, proc: Path = Path("/proc")) -> None:
        self.pid = pid
        self._proc = proc
        self._last = thread_times(pid, proc)

    def share(self) -> float | None:
        """Since the last call (or creation); None when unknown or the process did not run."""
        now = thread_times(self.pid, self._proc)
        last, self._last = self._last, now
        if now is None or last is None:
            return None
        ran, waited = now[0] - last[0], now[1] - last[1]
        if ran + waited <= 0.05:  # idle: nothing to judge by
            return None
        return max(0.0, waited) / (ran + waited)
