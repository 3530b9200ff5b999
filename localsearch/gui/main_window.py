"""The main window: a search box, ranked results, the indexed folders, and progress."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from localsearch.core.searcher import SearchHit
from localsearch.core.service import LocalSearch
from localsearch.core.storage import Filters
from localsearch.gui.results import HitRole, ResultDelegate, ResultsModel, results_summary
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.gui.workers import IndexLane, SearchLane, SearchRequest, WatchLane
from localsearch.settings import Settings
from localsearch.settings import load as load_settings
from localsearch.settings import save as save_settings

SEARCH_DELAY_MS = 250
# The filter row's kinds of file, by extension.
FILE_KINDS: list[tuple[str, tuple[str, ...]]] = [
    ("All files", ()),
    ("PDF", (".pdf",)),
    ("Text and notes", (".txt", ".md", ".markdown", ".rst", ".org")),
    ("Word and OpenDocument", (".docx", ".odt")),
    ("Web pages", (".html", ".htm", ".xhtml")),
    ("E-books", (".epub",)),
    ("E-mail", (".eml",)),
    ("Data", (".csv", ".tsv", ".json")),
]
MODIFIED_WITHIN: list[tuple[str, int]] = [
    ("Any time", 0),
    ("Past week", 7),
    ("Past month", 31),
    ("Past year", 366),
]


def _eta(seconds: float) -> str:
    """A rough time left, as a person says it."""
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


class FailuresDialog(QDialog):
    def __init__(self, failures: list[dict], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Files that could not be indexed")
        self.resize(820, 420)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(failures)} files were skipped. Each is tried again when it changes."))
        table = QTableWidget(len(failures), 2, self)
        table.setHorizontalHeaderLabels(["File", "Reason"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for row, item in enumerate(failures):
            name = QTableWidgetItem(os.path.basename(item["path"]))
            name.setToolTip(item["path"])
            table.setItem(row, 0, name)
            reason = QTableWidgetItem(item["reason"])
            reason.setToolTip(item["reason"])
            table.setItem(row, 1, reason)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class MainWindow(QMainWindow):
    results_shown = Signal(int)  # number of results now on screen (tests wait on it)
    status_shown = Signal()

    def __init__(
        self,
        service_factory: Callable[[], LocalSearch] = lambda: LocalSearch(keep_vectors=True, for_queries=True),
    ) -> None:
        super().__init__()
        self.setWindowTitle("localsearch")
        self.resize(1100, 720)
        self._failures: list[dict] = []
        self._folders: list[str] = []
        self._like: str | None = None  # "Find similar files": the file results are like
        self._shown_label = ""  # what the newest search was for

        self.search_lane = SearchLane(service_factory, self)
        self.search_lane.results.connect(self._show_results)
        self.search_lane.failed.connect(self._show_search_error)
        self.search_lane.status.connect(self._show_status)
        self.index_lane = IndexLane(self)
        self.index_lane.progress.connect(self._show_progress)
        self.index_lane.message.connect(self._show_index_message)
        self.index_lane.finished.connect(self._index_finished)
        self.watch_lane = WatchLane(self)
        self.watch_lane.changed.connect(self._files_changed)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._run_search)

        self._build()

    # -- layout ---------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(12, 12, 12, 6)

        top = QHBoxLayout()
        self.search_box = QLineEdit(self)
        self.search_box.setPlaceholderText("Search your files by meaning — e.g. “how do I renew my passport”")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumHeight(34)
        font = self.search_box.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.search_box.setFont(font)
        self.search_box.textChanged.connect(self._query_changed)
        self.search_box.returnPressed.connect(self._run_search)
        top.addWidget(self.search_box, 1)
        self.mode_box = QComboBox(self)
        self.mode_box.setMinimumHeight(34)
        for label, mode, tip in (
            (
                "Meaning + words",
                "hybrid",
                "Files that match your words or what they mean (best for most searches)",
            ),
            ("Meaning", "semantic", "Files about the same thing, even in other words"),
            ("Exact words", "keyword", 'Files containing your words; "quote" a phrase to match it literally'),
        ):
            self.mode_box.addItem(label, mode)
            self.mode_box.setItemData(self.mode_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.mode_box.currentIndexChanged.connect(self._run_search)
        top.addWidget(self.mode_box)
        self.add_button = QPushButton("Add folder…", self)
        self.add_button.setMinimumHeight(34)
        self.add_button.clicked.connect(self.choose_folder)
        top.addWidget(self.add_button)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.setMinimumHeight(34)
        self.settings_button.setToolTip("How files are indexed")
        self.settings_button.clicked.connect(self.open_settings)
        top.addWidget(self.settings_button)
        outer.addLayout(top)
        outer.addLayout(self._build_filters())

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        side = QWidget(splitter)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 6, 6, 0)
        side_layout.addWidget(QLabel("<b>Indexed folders</b>"))
        self.folder_list = QListWidget(side)
        self.folder_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.folder_list.customContextMenuRequested.connect(self._folder_menu)
        side_layout.addWidget(self.folder_list, 1)
        buttons = QHBoxLayout()
        self.reindex_button = QPushButton("Update index", side)
        self.reindex_button.setToolTip("Look for new, changed and deleted files in every folder")
        self.reindex_button.clicked.connect(self.reindex)
        buttons.addWidget(self.reindex_button)
        self.remove_button = QPushButton("Remove", side)
        self.remove_button.setToolTip("Forget the selected folder (your files are not touched)")
        self.remove_button.clicked.connect(self._remove_selected_folder)
        buttons.addWidget(self.remove_button)
        side_layout.addLayout(buttons)
        self.failures_button = QPushButton("", side)
        self.failures_button.setFlat(True)
        self.failures_button.setStyleSheet("text-align: left; color: #b26a00;")
        self.failures_button.clicked.connect(self._show_failures)
        self.failures_button.hide()
        side_layout.addWidget(self.failures_button)

        main = QWidget(splitter)
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(6, 6, 0, 0)
        self.summary_label = QLabel("", main)
        main_layout.addWidget(self.summary_label)
        self.stack = QStackedWidget(main)
        self.placeholder = QLabel("", main)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: palette(mid); font-size: 15px; padding: 40px;")
        self.results_model = ResultsModel(self)
        self.results_view = QListView(main)
        self.results_view.setModel(self.results_model)
        self.results_view.setItemDelegate(ResultDelegate(self.results_view))
        self.results_view.setMouseTracking(True)
        self.results_view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results_view.setFrameShape(QListView.Shape.NoFrame)
        self.results_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results_view.activated.connect(self._open_result)
        self.results_view.doubleClicked.connect(self._open_result)
        self.results_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.results_view.customContextMenuRequested.connect(self._result_menu)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.results_view)
        main_layout.addWidget(self.stack, 1)

        splitter.addWidget(side)
        splitter.addWidget(main)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 840])
        outer.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setToolTip("Hold indexing; what is done is kept")
        self.pause_button.clicked.connect(self.index_lane.toggle_pause)
        self.index_lane.paused_changed.connect(self._show_paused)
        self.pause_button.hide()
        self.statusBar().addPermanentWidget(self.progress_bar)
        self.statusBar().addPermanentWidget(self.pause_button)

        focus = QAction(self)
        focus.setShortcut(QKeySequence.StandardKey.Find)
        focus.triggered.connect(self._focus_search)
        self.addAction(focus)
        self._update_placeholder()

    def _build_filters(self) -> QHBoxLayout:
        """Narrow the results: kind of file, when it was modified, and the order."""
        row = QHBoxLayout()
        row.setContentsMargins(0, 4, 0, 0)
        self.type_box = QComboBox(self)
        for label, extensions in FILE_KINDS:
            self.type_box.addItem(label, extensions)
        self.date_box = QComboBox(self)
        for label, days in MODIFIED_WITHIN:
            self.date_box.addItem(label, days)
        self.sort_box = QComboBox(self)
        self.sort_box.addItem("Best match first", "relevance")
        self.sort_box.addItem("Newest first", "date")
        for caption, box in (("Type", self.type_box), ("Modified", self.date_box), ("Order", self.sort_box)):
            caption_label = QLabel(caption, self)
            caption_label.setStyleSheet("color: palette(mid);")
            row.addWidget(caption_label)
            row.addWidget(box)
            row.addSpacing(10)
            box.currentIndexChanged.connect(self._rerun)
        row.addStretch(1)
        return row

    def search_request(self) -> SearchRequest:
        """What the search box and the filter row ask for now."""
        days = self.date_box.currentData()
        filters = Filters(
            extensions=tuple(self.type_box.currentData() or ()),
            after=time.time() - days * 86400 if days else None,
        )
        return SearchRequest(
            self.search_box.text().strip(),
            mode=str(self.mode_box.currentData()),
            filters=filters,
            sort=str(self.sort_box.currentData()),
            like=self._like,
        )

    def _rerun(self) -> None:
        if self._like is not None or self.search_box.text().strip():
            self._run_search()

    def find_similar(self, path: str) -> None:
        """Files whose passages are closest to this file's."""
        self._like = path
        self._run_search()

    def _focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        """Show what is indexed, then bring every folder up to date in the background."""
        self.search_box.setFocus()
        self.search_lane.refresh_status()
        QTimer.singleShot(0, self._initial_update)

    def _initial_update(self) -> None:
        if self._folders:
            self.reindex()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.watch_lane.stop()
        self.index_lane.cancel()
        self.search_lane.stop()
        super().closeEvent(event)

    # -- folders and indexing -------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to index", os.path.expanduser("~"))
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        folder = os.path.abspath(folder)
        if folder not in self._folders:
            self._folders.append(folder)
            self._populate_folders()
        self.index_lane.index([folder])
        self._indexing_started()

    def open_settings(self) -> None:
        dialog = SettingsDialog(load_settings(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.chosen())

    def apply_settings(self, chosen: Settings) -> None:
        """Save the settings; when vectors are made another way (late chunking), search the
        new space and re-embed every folder, as switching models does."""
        before = load_settings()
        if chosen == before:
            return
        save_settings(chosen)
        # The search lane keeps the settings it opened with: reopen it on the new ones.
        self.search_lane.reload()
        if chosen.late_chunking != before.late_chunking:
            if self.index_lane.running:
                self.index_lane.cancel()  # it was filling the old space
            self.reindex()
        self.search_lane.refresh_status()
        self._rerun()

    def _files_changed(self, paths: list[str]) -> None:
        """The watcher saw these paths change: re-read just them, in the background."""
        relevant = [p for p in paths if any(p == f or p.startswith(f + os.sep) for f in self._folders)]
        if relevant:
            self.index_lane.update(relevant)
            if not self.progress_bar.isVisible():
                self._indexing_started()

    def reindex(self) -> None:
        if self._folders:
            self.index_lane.index(list(self._folders))
            self._indexing_started()

    def _indexing_started(self) -> None:
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("Preparing…")
        self.progress_bar.show()
        self.pause_button.show()
        self.statusBar().showMessage("Indexing…")
        self._update_placeholder()

    def _show_paused(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setToolTip("Go on indexing" if paused else "Hold indexing; what is done is kept")
        if paused:
            self.statusBar().showMessage("Indexing paused")

    def _show_progress(self, progress: dict) -> None:
        total = int(progress.get("files_total") or 0)
        done = int(progress.get("files_done") or 0)
        waiting = progress.get("paused")
        if progress.get("phase") == "indexing" and total:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            text = f"{done:,} / {total:,} files"
            eta = progress.get("eta_seconds")
            if waiting:
                text += f" · {waiting}"
            elif isinstance(eta, int | float) and eta >= 1 and done >= 5:
                text += f" · {_eta(float(eta))}"
            self.progress_bar.setFormat(text)
        current = progress.get("current")
        if waiting == "on battery":
            self.statusBar().showMessage("Indexing waits while the computer runs on battery")
        elif current and not waiting:
            self.statusBar().showMessage(f"Indexing {os.path.basename(str(current))}")
        if done and done % 25 == 0:
            self.search_lane.refresh_status()

    def _show_index_message(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def _index_finished(self, ok: bool, summary: str) -> None:
        if self.index_lane.running:
            return  # a queued run already started
        self.progress_bar.hide()
        self.pause_button.hide()
        self.statusBar().showMessage(summary, 15_000)
        if not ok:
            QMessageBox.warning(self, "Indexing stopped", summary)
        self.search_lane.refresh_status()
        if self.search_box.text().strip():
            self._run_search()

    def _populate_folders(self) -> None:
        self.watch_lane.watch(self._folders)
        self.folder_list.clear()
        for folder in self._folders:
            item = QListWidgetItem(os.path.basename(folder) or folder)
            item.setToolTip(folder)
            item.setData(Qt.ItemDataRole.UserRole, folder)
            if not os.path.exists(folder):
                item.setText(item.text() + "  (not reachable)")
            self.folder_list.addItem(item)

    def _remove_selected_folder(self) -> None:
        item = self.folder_list.currentItem()
        if item is None:
            return
        folder = item.data(Qt.ItemDataRole.UserRole)
        answer = QMessageBox.question(
            self,
            "Remove folder",
            f"Stop searching {folder}?\n\nIts entries leave the index; your files are not touched.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self.index_lane.running:
            self.index_lane.cancel()
        with LocalSearch() as service:
            service.remove_paths([folder])
        self._folders = [f for f in self._folders if f != folder]
        self._populate_folders()
        self.search_lane.refresh_status()
        self._run_search()

    def _folder_menu(self, point: QPoint) -> None:
        item = self.folder_list.itemAt(point)
        if item is None:
            return
        folder = item.data(Qt.ItemDataRole.UserRole)
        menu = QMenu(self)
        menu.addAction("Open folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(folder)))
        menu.addAction("Remove from index…", self._remove_selected_folder)
        menu.exec(self.folder_list.mapToGlobal(point))

    # -- status ---------------------------------------------------------------
    def _show_status(self, status: dict) -> None:
        folders = list(status.get("folders", []))
        if (folders != self._folders and not self.index_lane.running) or not self._folders:
            self._folders = folders
            self._populate_folders()
        self._failures = list(status.get("failed", []))
        count = len(self._failures)
        self.failures_button.setText(f"⚠ {count} file{'s' if count != 1 else ''} could not be indexed…")
        self.failures_button.setVisible(count > 0)
        files, chunks = status.get("files", 0), status.get("chunks", 0)
        model = status.get("model", "")
        if not self.index_lane.running:
            self.statusBar().showMessage(f"{files:,} files · {chunks:,} passages indexed · model {model}")
        self._files_indexed = int(files)
        self._update_placeholder()
        self.status_shown.emit()

    def _show_failures(self) -> None:
        FailuresDialog(self._failures, self).exec()

    # -- searching ------------------------------------------------------------
    def _query_changed(self, text: str) -> None:
        self._like = None  # typing leaves "similar to a file"
        if text.strip():
            self._search_timer.start()
        else:
            self._search_timer.stop()
            self.results_model.set_hits([])
            self.summary_label.setText("")
            self._update_placeholder()

    def _run_search(self) -> None:
        self._search_timer.stop()
        request = self.search_request()
        if request.query or request.like is not None:
            self._shown_label = request.label
            self.summary_label.setText("Searching…")
            self.search_lane.search(request)

    def _show_results(self, query: str, hits: list[SearchHit]) -> None:
        if query != self._shown_label:
            return  # an older search: a newer one is on its way
        self.results_model.set_hits(hits)
        if hits:
            sort = str(self.sort_box.currentData())
            self.summary_label.setText(results_summary(hits, query, self._like is not None, sort))
            self.stack.setCurrentWidget(self.results_view)
            self.results_view.scrollToTop()
        else:
            self.summary_label.setText("")
            self._update_placeholder(no_results=query)
        self.results_shown.emit(len(hits))

    def _show_search_error(self, message: str) -> None:
        self.summary_label.setText(message)
        self.results_shown.emit(0)

    def _update_placeholder(self, no_results: str | None = None) -> None:
        if no_results:
            text = f"Nothing in your indexed files matches “{no_results}”."
            if self.type_box.currentIndex() or self.date_box.currentIndex():
                text += "\n\nThe type or date filter is on: widen it to see more."
        elif not self._folders:
            text = (
                "Add a folder to start.\n\n"
                "localsearch reads the documents in it — text, PDF, Word, HTML, e-books, mail — "
                "and lets you find them by what they mean, not just the words in them. "
                "Everything stays on this computer."
            )
        elif self.index_lane.running and not getattr(self, "_files_indexed", 0):
            text = "Indexing your files… you can search as soon as the first ones are in."
        else:
            text = "Type what you are looking for, in your own words."
        self.placeholder.setText(text)
        if no_results or not self.search_box.text().strip():
            self.stack.setCurrentWidget(self.placeholder)

    # -- results --------------------------------------------------------------
    def _hit_at(self, index: QModelIndex) -> SearchHit | None:
        hit = index.data(HitRole) if index.isValid() else None
        return hit if isinstance(hit, SearchHit) else None

    def _open_result(self, index: QModelIndex) -> None:
        hit = self._hit_at(index)
        if hit is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(hit.path))

    def _result_menu(self, point: QPoint) -> None:
        hit = self._hit_at(self.results_view.indexAt(point))
        if hit is None:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(hit.path)))
        menu.addAction("Show in folder", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(hit.folder)))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(hit.path))
        menu.addSeparator()
        menu.addAction("Find similar files", lambda: self.find_similar(hit.path))
        menu.exec(self.results_view.mapToGlobal(point))
