"""Reading whether other work shares the cores: Linux's CPU pressure, else the load average."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from localsearch.core import cpu_load

PSI = (
    "some avg10={some:.2f} avg60=1.00 avg300=0.50 total=123456\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)


def write_pressure(tmp_path: Path, some: float) -> Path:
    path = tmp_path / "cpu"
    path.write_text(PSI.format(some=some))
    return path


def test_pressure_is_read_from_the_some_line(tmp_path: Path) -> None:
    assert cpu_load.cpu_pressure(write_pressure(tmp_path, 12.34)) == pytest.approx(12.34)


@pytest.mark.parametrize("text", ["", "some nothing here\n", "some avg10=abc\n", "\xff\xfe"])
def test_unreadable_pressure_is_unknown(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cpu"
    path.write_text(text, encoding="latin-1")
    assert cpu_load.cpu_pressure(path) is None
    assert cpu_load.cpu_pressure(tmp_path / "missing") is None


def test_pressure_decides_when_the_kernel_reports_it(tmp_path: Path) -> None:
    busy = write_pressure(tmp_path, cpu_load.BUSY_PRESSURE_PERCENT + 5)
    assert cpu_load.cores_busy(2, own_running=False, path=busy)
    quiet = write_pressure(tmp_path, 0.5)
    # Pressure does not count the engine's own spinning threads: quiet stays quiet.
    assert not cpu_load.cores_busy(2, own_running=True, path=quiet)


def test_the_load_average_stands_in_less_the_engines_own_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-pressure"
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (4.2, 3.0, 2.0))
    # 4 cores, the engine's 4 threads account for the load: nobody else is waiting.
    assert not cpu_load.cores_busy(4, own_running=True, path=missing)
    # The same load with the engine idle is other work on every core.
    assert cpu_load.cores_busy(4, own_running=False, path=missing)
    # Two threads leave two cores to others: a load of 2.2 from others fits beside them.
    monkeypatch.setattr(os, "getloadavg", lambda: (2.2, 2.0, 2.0))
    assert not cpu_load.cores_busy(2, own_running=False, path=missing)


def test_nothing_known_counts_as_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_load() -> tuple[float, float, float]:
        raise OSError("not available")

    monkeypatch.setattr(os, "getloadavg", no_load)
    assert cpu_load.cores_busy(2, own_running=False, path=tmp_path / "missing")


def fake_process(proc: Path, pid: int, threads: list[tuple[int, int]]) -> None:
    for number, (ran, waited) in enumerate(threads):
        task = proc / str(pid) / "task" / str(pid + number)
        task.mkdir(parents=True, exist_ok=True)
        (task / "schedstat").write_text(f"{ran} {waited} 42\n")


def test_run_delay_is_the_share_of_ready_time_spent_waiting(tmp_path: Path) -> None:
    fake_process(tmp_path, 7, [(10**9, 0), (10**9, 0)])
    probe = cpu_load.RunDelayProbe(7, proc=tmp_path)
    assert cpu_load.thread_times(7, proc=tmp_path) == (2.0, 0.0)
    # Both threads ran 3 s more and waited 1 s more between the readings.
    fake_process(tmp_path, 7, [(25 * 10**8, 5 * 10**8), (25 * 10**8, 5 * 10**8)])
    assert probe.share() == pytest.approx(0.25)
    assert probe.share() is None  # nothing ran since: no judgement
    assert cpu_load.RunDelayProbe(8, proc=tmp_path).share() is None  # no such process


def test_this_process_can_be_probed_where_linux_reports_it() -> None:
    if not list(Path("/proc/self/task").glob("*/schedstat")):
        pytest.skip("this system reports no schedstat")
    probe = cpu_load.RunDelayProbe(os.getpid())
    started = time.process_time()
    while time.process_time() - started < 0.3:  # run well past the probe's idle threshold
        sum(i * i for i in range(10_000))
    share = probe.share()
    assert share is not None and 0.0 <= share <= 1.0
    assert probe.share() is None  # and nothing ran since
