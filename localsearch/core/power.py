"""Whether the computer runs on battery, and what indexing does about it.

Read where the operating system reports it: Linux's /sys/class/power_supply, else
psutil's sensors_battery() when psutil is installed (Windows, macOS). None means "not
known" (a desktop, or no way to tell) and never pauses anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

POWER_SUPPLY = Path("/sys/class/power_supply")

BATTERY_POLICIES = ("continue", "slow", "pause")

PowerReading = Callable[[], bool | None]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def on_battery_sysfs(base: Path = POWER_SUPPLY) -> bool | None:
    """From Linux's power-supply class: on mains if any mains/USB supply is online; on
    battery if a system battery reports Discharging; None when nothing is reported."""
    if not base.is_dir():
        return None
    batteries: list[str] = []
    for supply in sorted(base.iterdir()):
        kind = _read(supply / "type")
        if kind in ("Mains", "USB", "USB_C", "USB_PD") and _read(supply / "online") == "1":
            return False
        # "scope" = Device marks a mouse's or headset's battery, not the computer's.
        if kind == "Battery" and _read(supply / "scope") != "Device":
            batteries.append(_read(supply / "status"))
    if not batteries:
        return None
    return any(status == "Discharging" for status in batteries)


def on_battery_psutil() -> bool | None:
    try:
        import psutil
    except ImportError:
        return None
    sensors = getattr(psutil, "sensors_battery", None)
    if sensors is None:
        return None
    try:
        battery = sensors()
    except Exception:  # some platforms raise instead of returning None
        return None
    if battery is None or battery.power_plugged is None:
        return None
    return not battery.power_plugged


def on_battery() -> bool | None:
    reading = on_battery_sysfs()
    return reading if reading is not None else on_battery_psutil()


class PowerPolicy:
    """What to do on battery: "continue", "slow" (rest as long as each file took, about
    half the CPU) or "pause" (wait until mains power returns). The reading is taken at
    most every `interval` seconds; tests pass a fake reading and clock."""

    def __init__(
        self,
        policy: str = "continue",
        reading: PowerReading = on_battery,
        *,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in BATTERY_POLICIES:
            raise ValueError(f"battery policy must be one of {', '.join(BATTERY_POLICIES)}")
        self.policy = policy
        self._reading = reading
        self._interval = interval
        self._clock = clock
        self._checked_at: float | None = None
        self._battery: bool | None = None

    def on_battery(self) -> bool:
        if self.policy == "continue":
            return False
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._interval:
            self._battery = self._reading()
            self._checked_at = now
        return bool(self._battery)

    def should_pause(self) -> bool:
        return self.policy == "pause" and self.on_battery()

    def rest_after(self, busy_seconds: float) -> float:
        """Seconds to rest after `busy_seconds` of work."""
        return busy_seconds if self.policy == "slow" and self.on_battery() else 0.0
