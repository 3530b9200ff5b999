"""What a first run shows: the folders to read (suggested, or chosen), how much is in them
and about how long reading it takes with each model, the choice of model, and one button."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from localsearch.errors import LocalSearchError
from localsearch.gui.index_estimate import COUNT_CAP, FolderScan, estimate_seconds, say_duration, scan_folder

log = logging.getLogger(__name__)

FAST_MODEL = "all-minilm-l6-v2"
QUALITY_MODEL = "nomic-embed-text-v1-5"


@dataclass(frozen=True)
class ModelOption:
    name: str  # the catalog name
    title: str
    blurb: str
    disk_bytes: int  # on disk once there
    fetch_bytes: int  # fetched to build it (0: nothing to fetch)
    ready: bool  # its files are here
    usable: bool = True
    reason: str = ""  # why it cannot run here


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3)):,} kB"


def model_options() -> list[ModelOption]:
    """The fast and the quality model, with what each costs here (from the model manager)."""
    from localsearch.core.models import api

    try:
        statuses = {s.name: s for s in api.list_models()}
    except LocalSearchError as exc:  # a broken catalog or models folder: offer the built-in one
        log.warning("model list unavailable for the welcome view: %s", exc)
        statuses = {}
    options = []
    for name, title, blurb in (
        (FAST_MODEL, "Fast", "all-MiniLM-L6-v2, built in: good results, quick to index"),
        (
            QUALITY_MODEL,
            "Best quality",
            "nomic-embed-text-v1.5: finds more, reads longer passages, indexes several times slower",
        ),
    ):
        status = statuses.get(name)
        entry = status.entry if status else None
        whole = [f for f in status.files if f.layers is None] if status else []
        costs = api.model_costs(entry, whole) if status else {}
        options.append(
            ModelOption(
                name,
                title,
                blurb,
                int(costs.get("disk_bytes", 0)),
                0 if whole else int(costs.get("fetch_bytes", 0)),
                bool(whole),
                bool(entry is None or entry.usable),
                entry.reason if entry is not None else "",
            )
        )
    return options


class WelcomeView(QScrollArea):
    """Scrolls when the window is too short for it (800x500 and less), never cuts."""

    start_with = Signal(list, str)  # folders ticked, the model chosen
    choose = Signal()  # the person wants to pick a folder (the window opens the dialog)
    counted = Signal(str, object)  # folder, FolderScan (from a helper thread)

    def __init__(
        self, suggestions: list[Path], parent: QWidget | None = None, models: list[ModelOption] | None = None
    ) -> None:
        super().__init__(parent)
        self.setAccessibleName("Welcome")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to its controls (scrolled into view)
        self._scans: dict[str, FolderScan] = {}
        page = QWidget(self)
        outer = QVBoxLayout(page)
        outer.addStretch(1)
        column = QVBoxLayout()
        column.setSpacing(10)
        title = QLabel("Find your files by what they mean", self)
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        title.setWordWrap(True)
        column.addWidget(title)
        self.intro = QLabel(
            "Add a folder to start. localsearch reads the documents in it — text, PDF, Word, "
            "web pages, e-books, mail — so you can find them by what they say, not only by "
            "their exact words. Everything stays on this computer.",
            self,
        )
        self.intro.setWordWrap(True)
        column.addWidget(self.intro)
        self._folders_column = QVBoxLayout()
        column.addLayout(self._folders_column)
        self.suggestion_boxes: list[QCheckBox] = []
        self.other_button = QPushButton("Choose another folder…", self)
        self.other_button.setFlat(True)
        self.other_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.other_button.clicked.connect(self.choose)
        column.addWidget(self.other_button)

        heading = QLabel("<b>How should it read them?</b>", self)
        column.addSpacing(6)
        column.addWidget(heading)
        self.estimate = QLabel("", self)  # placed under the choices, updated from the start
        self.estimate.setWordWrap(True)
        self.estimate.setAccessibleName("Estimate")
        self.models = models if models is not None else model_options()
        self.model_group = QButtonGroup(self)
        self.model_buttons: dict[str, QRadioButton] = {}
        self.model_details: dict[str, QLabel] = {}
        for option in self.models:
            button = QRadioButton(self)
            button.setProperty("model", option.name)
            button.setAccessibleName(f"{option.title} model")
            button.setEnabled(option.usable)
            button.toggled.connect(self._update_estimate)
            self.model_group.addButton(button)
            self.model_buttons[option.name] = button
            column.addWidget(button)
            # The details under the choice, wrapped: a radio button's text never wraps, and
            # a long one would hold the whole window wide.
            details = QLabel("", self)
            details.setWordWrap(True)
            details.setContentsMargins(26, 0, 0, 4)
            details.setBuddy(button)
            self.model_details[option.name] = details
            column.addWidget(details)
        first_usable = next((b for b in self.model_buttons.values() if b.isEnabled()), None)
        if first_usable is not None:
            first_usable.setChecked(True)
        column.addWidget(self.estimate)

        self.start_button = QPushButton("Search these folders", self)
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(44)
        big = self.start_button.font()
        big.setPointSizeF(big.pointSizeF() * 1.2)
        big.setBold(True)
        self.start_button.setFont(big)
        self.start_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.start_button.clicked.connect(self._start)
        column.addSpacing(4)
        column.addWidget(self.start_button)
        self.counted.connect(self._show_count)
        for folder in suggestions:
            self.add_folder(folder)
        self._update_button()

        # Centred by stretches, not by an alignment flag: an aligned widget gets its size
        # hint's height, too short for wrapped text at the width it is given.
        row = QHBoxLayout()
        row.addStretch(1)
        holder = QWidget(page)
        holder.setLayout(column)
        holder.setMaximumWidth(600)
        row.addWidget(holder, 10)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self.setWidget(page)

    # -- folders --------------------------------------------------------------
    def add_folder(self, folder: Path | str) -> None:
        """Offer a folder (ticked), and count what is in it in the background."""
        folder = Path(folder)
        for box in self.suggestion_boxes:
            if box.property("folder") == str(folder):
                box.setChecked(True)
                return
        box = QCheckBox(f"{folder.name}  ({folder})", self)
        box.setChecked(True)
        box.setProperty("folder", str(folder))
        box.setAccessibleName(f"Search {folder.name}")
        box.setAccessibleDescription(str(folder))
        box.toggled.connect(self._update_button)
        box.toggled.connect(self._update_estimate)
        self.suggestion_boxes.append(box)
        self._folders_column.addWidget(box)
        # A big Documents folder takes seconds to walk: off the UI thread.
        threading.Thread(
            target=lambda: self.counted.emit(str(folder), scan_folder(folder)),
            name="welcome-count",
            daemon=True,
        ).start()
        self._update_button()
        self._update_estimate()

    def _show_count(self, folder: str, scan: FolderScan) -> None:
        self._scans[folder] = scan
        for box in self.suggestion_boxes:
            if box.property("folder") == folder:
                many = f"{scan.files:,}+" if scan.capped else f"{scan.files:,}"
                noun = "document" if scan.files == 1 else "documents"
                box.setText(f"{Path(folder).name}  ({folder}) — {many} {noun}")
                box.setProperty("count", scan.files)
                if not scan.files:
                    box.setChecked(False)  # nothing to read there: not ticked for the person
        self._update_estimate()

    def ticked(self) -> list[str]:
        return [str(b.property("folder")) for b in self.suggestion_boxes if b.isChecked()]

    def chosen_model(self) -> str:
        button = self.model_group.checkedButton()
        return str(button.property("model")) if button is not None else FAST_MODEL

    # -- the estimate ---------------------------------------------------------
    def ticked_scan(self) -> FolderScan | None:
        """What the ticked folders hold, once all of them are counted (None before)."""
        ticked = self.ticked()
        if not ticked or any(f not in self._scans for f in ticked):
            return None
        total = FolderScan()
        for folder in ticked:
            total = total.add(self._scans[folder])
        return total

    def _update_estimate(self) -> None:
        scan = self.ticked_scan()
        for option in self.models:
            button = self.model_buttons[option.name]
            size = f"{_megabytes(option.disk_bytes)} on disk" if option.disk_bytes else ""
            if not option.usable:
                extra = f"cannot run here: {option.reason}"
            elif option.ready:
                extra = "ready"
            elif option.fetch_bytes:
                extra = f"built once in the background ({_megabytes(option.fetch_bytes)} to fetch)"
            else:
                extra = "built once in the background"
            time_text = f" — {say_duration(estimate_seconds(scan, option.name))}" if scan else ""
            button.setText(f"{option.title}{time_text}")
            details = f"{option.blurb}. {'; '.join(p for p in (size, extra) if p)}."
            self.model_details[option.name].setText(details)
            button.setAccessibleDescription(details)
        if not self.ticked():
            self.estimate.setText("Tick a folder above, or choose one.")
        elif scan is None:
            self.estimate.setText("Counting the documents…")
        else:
            many = f"{COUNT_CAP:,}+" if scan.capped else f"{scan.files:,}"
            noun = "document" if scan.files == 1 else "documents"
            seconds = estimate_seconds(scan, self.chosen_model())
            self.estimate.setText(
                f"{many} {noun} ({_megabytes(scan.total_bytes)}): {say_duration(seconds)} to read them all "
                "on this computer. You can search as soon as the first ones are in."
            )

    def _update_button(self) -> None:
        self.start_button.setText("Search these folders" if self.ticked() else "Choose a folder to search…")

    def _start(self) -> None:
        ticked = self.ticked()
        if ticked:
            self.start_with.emit(ticked, self.chosen_model())
        else:
            self.choose.emit()
