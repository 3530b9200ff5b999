"""Battery awareness: the reading from sysfs, and what each policy decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from localsearch.core.indexer import IndexControl
from localsearch.core.power import PowerPolicy, on_battery_sysfs


def _supply(base: Path, name: str, **values: str) -> None:
    folder = base / name
    folder.mkdir(parents=True)
    for key, value in values.items():
        (folder / key).write_text(value + "\n")


def test_sysfs_reading(tmp_path: Path) -> None:
    assert on_battery_sysfs(tmp_path / "missing") is None
    assert on_battery_sysfs(tmp_path) is None  # a desktop: no supplies at all
    _supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging")
    assert on_battery_sysfs(tmp_path) is None  # a mouse's battery is not the computer's
    _supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert on_battery_sysfs(tmp_path) is True
    _supply(tmp_path, "AC", type="Mains", online="0")
    assert on_battery_sysfs(tmp_path) is True
    (tmp_path / "AC" / "online").write_text("1\n")
    assert on_battery_sysfs(tmp_path) is False
    (tmp_path / "AC" / "online").write_text("0\n")
    (tmp_path / "BAT0" / "status").write_text("Full\n")
    assert on_battery_sysfs(tmp_path) is False


class FakePower:
    def __init__(self) -> None:
        self.battery: bool | None = False
        self.reads = 0
        self.now = 0.0

    def read(self) -> bool | None:
        self.reads += 1
        return self.battery

    def clock(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("policy", "battery", "pause", "rest"),
    [
        ("continue", True, False, 0.0),
        ("pause", True, True, 0.0),
        ("pause", False, False, 0.0),
        ("pause", None, False, 0.0),  # unknown never pauses
        ("slow", True, False, 2.0),
        ("slow", False, False, 0.0),
    ],
)
def test_policy_decisions(policy: str, battery: bool | None, pause: bool, rest: float) -> None:
    fake = FakePower()
    fake.battery = battery
    decide = PowerPolicy(policy, fake.read, clock=fake.clock)
    assert decide.should_pause() is pause
    assert decide.rest_after(2.0) == rest


def test_the_reading_is_cached_for_an_interval() -> None:
    fake = FakePower()
    decide = PowerPolicy("pause", fake.read, interval=10, clock=fake.clock)
    assert not decide.should_pause()
    fake.battery = True
    fake.now = 5
    assert not decide.should_pause() and fake.reads == 1
    fake.now = 10
    assert decide.should_pause() and fake.reads == 2


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        PowerPolicy("sometimes")


def test_control_waits_on_battery_and_when_paused() -> None:
    fake = FakePower()
    control = IndexControl(PowerPolicy("pause", fake.read, interval=0, clock=fake.clock))
    assert control.wait_reason() is None
    fake.battery = True
    assert control.wait_reason() == "on battery"
    fake.battery = False
    control.pause()
    assert control.wait_reason() == "paused"
    control.resume()
    assert control.wait_reason() is None
    control.pause()
    control.cancel()
    assert control.cancelled and control.wait_reason() is None
