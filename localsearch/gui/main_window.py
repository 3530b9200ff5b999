"""The main window: a search box, ranked results, the indexed folders, and progress."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from localsearch.core.searcher import SearchHit
from localsearch.core.service import LocalSearch
from localsearch.errors import LocalSearchError
from localsearch.gui import opener, theme
from localsearch.gui.failures import FailuresDialog
from localsearch.gui.filter_bar import FilterBar
from localsearch.gui.folder_panel import FolderPanel
from localsearch.gui.index_monitor import IndexMonitor, Passage
from localsearch.gui.keys import trigger_bound_action
from localsearch.gui.models_dialog import ModelsDialog, use_model
from localsearch.gui.progress_view import IndexProgressView
from localsearch.gui.results import HitRole, WeakerRole, remote_host, results_summary
from localsearch.gui.results_pane import ResultsPane
from localsearch.gui.results_view import PopupOnArrows
from localsearch.gui.search_bar import SearchBar
from localsearch.gui.settings_dialog import SettingsDialog
from localsearch.gui.tray import Tray
from localsearch.gui.widgets import NoticeBar
from localsearch.gui.workers import IndexLane, SearchLane, SearchRequest, WatchLane
from localsearch.settings import Settings, embedding_changed
from localsearch.settings import load as load_settings
from localsearch.settings import save as save_settings

SEARCH_DELAY_MS = 250


class MainWindow(QMainWindow):
    results_shown = Signal(int)  # number of results now on screen (tests wait on it)
    status_shown = Signal()
    open_failed = Signal(str, str)  # path, reason (from the opener's helper thread)

    def __init__(
        self,
        service_factory: Callable[[], LocalSearch] = lambda: LocalSearch(keep_vectors=True, for_queries=True),
    ) -> None:
        super().__init__()
        self.setWindowTitle("localsearch")
        self.resize(1100, 720)
        self.setMinimumSize(640, 420)
        self._failures: list[dict] = []
        self._told_recovered: object = None
        self.notice_box: QMessageBox | None = None
        self._folders: list[str] = []
        self._adding: list[str] = []  # added here, not yet in the index's folder list
        self._removing: list[str] = []  # asked to be removed, removal not yet done
        self._removal_waits = False  # a removal waits for the indexing child to stop
        self._resume_after_removal = False
        self._index_known = False  # a status has arrived: the welcome view may be shown
        self._catch_up_pending = False  # launch: bring the folders up to date once known
        self._files_indexed = 0
        self._chunks_indexed = 0
        self._switch_pending = False  # a new model is being filled; searches stay on the old
        self._like: str | None = None  # "Find similar files": the file results are like
        self._shown_label = ""  # what the newest search was for
        self._preview_query = ""

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
        self.monitor = IndexMonitor(self)
        self.monitor.status.connect(self._show_status)
        self.monitor.removed.connect(self._folders_removed)
        self.monitor.failed.connect(lambda text: self.notice.show_notice(text))
        self.monitor.passages.connect(self._show_passages)
        self.open_failed.connect(self._explain_open_failure)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._run_search)

        self._quitting = False
        self.tray: Tray | None = None
        self._model_job: QObject | None = None  # a model built from the welcome view
        self._build()
        self._build_menus()
        self._update_actions()
        self._update_tray()
        self.results_shown.connect(self._results_arrived)

    # -- layout ---------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget(self)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(12, 10, 12, 6)
        self._arrows = PopupOnArrows(self)

        self.search_bar = SearchBar(self._arrows, central)
        self.search_box = self.search_bar.search_box
        self.mode_box = self.search_bar.mode_box
        self.add_button = self.search_bar.add_button
        self.settings_button = self.search_bar.settings_button
        self.search_box.textChanged.connect(self._query_changed)
        self.search_box.returnPressed.connect(self._run_search)
        self.search_box.installEventFilter(self)
        self.mode_box.currentIndexChanged.connect(self._run_search)
        self.add_button.clicked.connect(self.choose_folder)
        self.settings_button.clicked.connect(self.open_settings)
        outer.addWidget(self.search_bar)

        self.filter_bar = FilterBar(self._arrows, central)
        self.type_box = self.filter_bar.type_box
        self.date_box = self.filter_bar.date_box
        self.folder_box = self.filter_bar.folder_box
        self.sort_box = self.filter_bar.sort_box
        self.filter_bar.changed.connect(self._rerun)
        outer.addWidget(self.filter_bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setChildrenCollapsible(False)
        self.folder_panel = FolderPanel(self.splitter)
        self.side_panel = self.folder_panel
        self.folder_list = self.folder_panel.folder_list
        self.reindex_button = self.folder_panel.reindex_button
        self.remove_button = self.folder_panel.remove_button
        self.failures_button = self.folder_panel.failures_button
        self.folder_panel.update_requested.connect(self.reindex)
        self.folder_panel.remove_requested.connect(self.remove_folder)
        self.folder_panel.failures_requested.connect(self._show_failures)
        self.folder_panel.open_requested.connect(self.open_path)
        self.folder_panel.search_only_requested.connect(self.filter_bar.only_folder)
        self.folder_list.currentItemChanged.connect(lambda *_: self._update_actions())

        self.results_pane = ResultsPane(self.splitter)
        pane = self.results_pane
        self.summary_label = pane.summary_label
        self.content = pane.content
        self.stack = pane.stack
        self.welcome = pane.welcome
        self.placeholder = pane.placeholder
        self.results_model = pane.results_model
        self.results_view = pane.results_view
        self.preview = pane.preview
        self.welcome.start_with.connect(self.start_from_welcome)
        self.welcome.choose.connect(self._choose_for_welcome)
        self.results_view.doubleClicked.connect(self._open_result)
        self.results_view.customContextMenuRequested.connect(self._result_menu)
        self.results_view.left_top.connect(self._back_to_search_box)
        self.results_view.selectionModel().currentChanged.connect(self._current_result_changed)
        self.stack.currentChanged.connect(lambda *_: self._place_preview())
        self.preview.open_page.connect(self.open_path)

        self.splitter.addWidget(self.folder_panel)
        self.splitter.addWidget(self.results_pane)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 860])
        outer.addWidget(self.splitter, 1)
        self.notice = NoticeBar(central)
        outer.addWidget(self.notice)
        self.setCentralWidget(central)
        self._build_status_bar()
        self._set_tab_order()
        self._update_placeholder()

    def _build_status_bar(self) -> None:
        self.progress_view = IndexProgressView(self)
        self.progress_bar = self.progress_view.progress_bar
        self.pause_button = self.progress_view.pause_button
        self.pause_button.clicked.connect(self.index_lane.toggle_pause)
        self.index_lane.paused_changed.connect(self._show_paused)
        self.statusBar().addPermanentWidget(self.progress_view)

    def _set_tab_order(self) -> None:
        """Tab goes from the box straight to the results, then to the choices around them."""
        order = [
            self.search_box,
            self.results_view,
            self.mode_box,
            self.type_box,
            self.date_box,
            self.folder_box,
            self.sort_box,
            self.preview,
            self.folder_list,
            self.reindex_button,
            self.remove_button,
            self.add_button,
            self.settings_button,
        ]
        for before, after in itertools.pairwise(order):
            QWidget.setTabOrder(before, after)

    def _build_menus(self) -> None:
        """Every action in a menu with its shortcut. Actions on the current result are
        shortcuts of the results list only, so typing in the box keeps its own keys."""
        bar = self.menuBar()

        def action(
            text: str,
            slot: Callable[[], object],
            keys: list[QKeySequence | str] | None = None,
            *,
            on: QWidget | None = None,
            tip: str = "",
        ) -> QAction:
            act = QAction(text, self)
            if keys:
                act.setShortcuts([QKeySequence(k) for k in keys])
            act.triggered.connect(lambda *_: slot())
            if tip:
                act.setStatusTip(tip)
            if on is not None:
                act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
                on.addAction(act)
            else:
                self.addAction(act)
            return act

        file_menu = bar.addMenu("&File")
        self.add_action = action("&Add folder…", self.choose_folder, ["Ctrl+O"])
        self.update_action = action("&Update index", self.reindex, ["F5", "Ctrl+R"])
        self.pause_action = action("&Pause indexing", self.index_lane.toggle_pause, ["Ctrl+P"])
        self.failures_action = action("Files that could not be &indexed…", self._show_failures)
        self.settings_action = action("&Settings…", self.open_settings, ["Ctrl+,"])
        self.models_action = action("&Models…", self.open_models)
        self.quit_action = action("&Quit", self.quit, ["Ctrl+Q"])
        for act in (self.add_action, self.update_action, self.pause_action, self.failures_action):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.models_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        view = self.results_view
        self.open_action = action("&Open", self.open_current, ["Return", "Enter"], on=view)
        self.reveal_action = action(
            "Show in &folder", self.reveal_current, ["Ctrl+Return", "Ctrl+Enter"], on=view
        )
        self.copy_action = action("&Copy path", self.copy_current_path, ["Ctrl+C"], on=view)
        self.similar_action = action("Find &similar files", self.similar_to_current, ["Ctrl+M"], on=view)
        self.find_action = action("&Find", self._focus_search, ["Ctrl+F", "Ctrl+K", "Ctrl+L"])
        self.clear_action = action("C&lear search", self.clear_search, ["Esc"])
        for act in (self.open_action, self.reveal_action, self.copy_action, self.similar_action):
            edit_menu.addAction(act)
        edit_menu.addSeparator()
        edit_menu.addAction(self.find_action)
        edit_menu.addAction(self.clear_action)

        view_menu = bar.addMenu("&View")
        self.preview_action = QAction("&Preview pane", self)
        self.preview_action.setCheckable(True)
        self.preview_action.setShortcuts([QKeySequence("Space")])
        self.preview_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.preview_action.toggled.connect(self.set_preview_visible)
        view.addAction(self.preview_action)
        self.preview.addAction(self.preview_action)
        view_menu.addAction(self.preview_action)
        self.preview_menu_action = action("Show or hide the preview", self.preview_action.toggle, ["F3"])
        view_menu.addAction(self.preview_menu_action)
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        current = load_settings().theme
        for name in theme.THEMES:
            act = QAction(theme.THEME_LABELS[name], self, checkable=True)
            act.setChecked(name == current)
            act.triggered.connect(lambda _=False, name=name: self.set_theme(name))
            group.addAction(act)
            theme_menu.addAction(act)
            self.theme_actions[name] = act

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(action("&Keyboard shortcuts", self._show_shortcuts, ["F1"]))
        help_menu.addAction(action("&About localsearch", self._show_about))

    def search_request(self) -> SearchRequest:
        """What the search box and the filter row ask for now."""
        return SearchRequest(
            self.search_box.text().strip(),
            mode=str(self.mode_box.currentData()),
            filters=self.filter_bar.filters(),
            sort=self.filter_bar.sort(),
            like=self._like,
        )

    def _rerun(self) -> None:
        if self._like is not None or self.search_box.text().strip():
            self._run_search()

    def find_similar(self, path: str) -> None:
        """Files whose passages are closest to this file's."""
        self._like = path
        self._run_search()

    # -- keyboard -------------------------------------------------------------
    def eventFilter(self, watched: object, event: object) -> bool:
        from PySide6.QtCore import QEvent
        from PySide6.QtGui import QKeyEvent

        if (
            watched is self.search_box
            and isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and event.key() in (Qt.Key.Key_Down, Qt.Key.Key_PageDown)
            and self.results_model.rowCount()
            and self.stack.currentWidget() is self.results_view
        ):
            self.results_view.focus_first()
            return True
        return super().eventFilter(watched, event)  # type: ignore[arg-type]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # A key no shortcut took and no widget used (the window is not Qt's active one:
        # see gui/keys.py) still does what its menu entry says.
        if not trigger_bound_action(self.actions(), event):
            super().keyPressEvent(event)

    def _back_to_search_box(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _focus_search(self) -> None:
        if self.isMinimized() or not self.isVisible():
            self.showNormal()
        self.activateWindow()
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def clear_search(self) -> None:
        """Esc: the query goes, the box takes the keyboard for the next one; Esc on an
        empty box hides the window to the tray when it keeps watching."""
        if not self.search_box.text() and self._like is None and self._hides_to_tray():
            self.hide()
            return
        self.search_box.clear()
        self._like = None
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _show_shortcuts(self) -> None:
        rows = [
            ("Ctrl+F, Ctrl+K, Ctrl+L", "Go to the search box"),
            ("↓ / ↑", "Into the results and back to the box"),
            ("Enter", "Open the selected file (a PDF at its page)"),
            ("Ctrl+Enter", "Show it in its folder"),
            ("Ctrl+C", "Copy its path"),
            ("Space", "Preview pane on or off"),
            ("Esc", "Clear the search"),
            ("F5", "Update the index"),
            ("Ctrl+O", "Add a folder"),
            ("Ctrl+Q", "Quit"),
        ]
        table = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
        box = QMessageBox(
            QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{table}</table>", parent=self
        )
        box.open()

    def _show_about(self) -> None:
        from localsearch import __version__

        QMessageBox.about(
            self,
            "About localsearch",
            f"<b>localsearch {__version__}</b><p>Searches your own files by meaning, on this "
            "computer only: nothing you index or search leaves it.</p>",
        )

    def show_error(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the window goes on

    def quit(self) -> None:
        """Quit for real, also when closing the window only hides it to the tray."""
        self._quitting = True
        self.close()

    def _hides_to_tray(self) -> bool:
        return self.tray is not None and load_settings().keep_watching and not self._quitting

    def _update_tray(self) -> None:
        """The tray icon shows while the person asked to keep watching (where there is a tray)."""
        wanted = load_settings().keep_watching and Tray.available()
        if wanted and self.tray is None:
            self.tray = Tray(self._focus_search, self.pause_action, self.quit, self)
        if self.tray is not None:
            self.tray.set_visible(wanted)
            if not wanted:
                self.tray = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        """Show what is indexed, then bring every folder up to date in the background (once
        the folder list has arrived), and follow the index from then on."""
        self.search_box.setFocus()
        self._catch_up_pending = True
        self.monitor.refresh()
        self.monitor.start_probing()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._hides_to_tray():
            # Keeps watching and indexing; the tray brings the window back or quits.
            self.hide()
            event.ignore()
            return
        if self.tray is not None:
            self.tray.set_visible(False)
        self.watch_lane.stop()
        self.index_lane.shutdown()
        self.monitor.stop()
        self.search_lane.stop()
        super().closeEvent(event)

    # -- folders and indexing -------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to search", os.path.expanduser("~"))
        if folder:
            self.add_folder(folder)

    def add_folders(self, folders: list[str]) -> None:
        chosen = [os.path.abspath(f) for f in folders]
        for folder in chosen:
            if folder not in self._folders:
                self._folders.append(folder)
                self._adding.append(folder)
        self._populate_folders()
        self.index_lane.index(chosen)
        self._indexing_started()

    def add_folder(self, folder: str) -> None:
        self.add_folders([folder])

    def _choose_for_welcome(self) -> None:
        """A folder picked on the welcome view joins its list (counted, with the time it
        takes); reading starts with the welcome view's button."""
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder to search", os.path.expanduser("~"))
        if folder:
            self.welcome.add_folder(folder)

    def start_from_welcome(self, folders: list[str], model: str) -> None:
        """The first run's one button: read these folders with this model. A model still to
        be built is built in the background while the files are read with the one in use,
        then they are read again with it (searches work all along)."""
        option = next((o for o in self.welcome.models if o.name == model), None)
        if option is not None and model != load_settings().model:
            if option.ready:
                try:
                    use_model(model)
                except LocalSearchError as exc:
                    self.notice.show_notice(f"Could not switch to {option.title.lower()} model: {exc}")
                self.search_lane.reload()
                self.monitor.reload()
            else:
                self._build_then_use(model, option.title)
        self.add_folders(folders)

    def _build_then_use(self, model: str, title: str) -> None:
        from localsearch.gui.models_dialog import build_job

        job = build_job(model)
        job.note.connect(lambda text: self.statusBar().showMessage(text, 8000))
        job.done.connect(lambda ok, message: self._model_built(model, ok, message))
        self._model_job = job  # kept alive while it runs
        self.notice.show_notice(
            f"Building the {title.lower()} model in the background (once). Your files are read "
            "with the fast model meanwhile, and again with the new one when it is ready."
        )
        job.start()

    def _model_built(self, model: str, ok: bool, message: str) -> None:
        self._model_job = None
        if not ok:
            self.notice.show_notice(f"The model could not be built: {message} The fast model stays in use.")
            return
        try:
            result = use_model(model)
        except LocalSearchError as exc:
            self.notice.show_notice(f"The model was built but cannot be used: {exc}")
            return
        self.switch_model(result.model)

    def open_settings(self) -> None:
        dialog = SettingsDialog(load_settings(), self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_settings(dialog.chosen())

    def open_models(self) -> None:
        dialog = ModelsDialog(self._chunks_indexed, self)
        dialog.model_chosen.connect(self.switch_model)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def switch_model(self, model: str) -> None:
        """The settings name a new model: re-embed every folder in the background. Searches
        keep the lane's current service (the old model and its vectors) until that is done."""
        self._switch_pending = True
        if self.index_lane.running:
            self.index_lane.cancel()  # it was filling the old model's space
        self.reindex()
        self.notice.show_notice(
            f"Reading your files again with {model}. Searches use the previous model until it is done."
        )

    def apply_settings(self, chosen: Settings) -> None:
        """Save the settings; when passage vectors are made another way (late chunking, file
        names), re-embed every folder into the new space. Searches move to it at once: its
        meaning lane reads the previous space for the files not yet embedded again."""
        before = load_settings()
        if chosen == before:
            return
        save_settings(chosen)
        if chosen.theme != before.theme:
            self._use_theme(chosen.theme)
        if chosen.keep_watching != before.keep_watching:
            self._update_tray()
        # The search lane keeps the settings it opened with: reopen it on the new ones.
        self.search_lane.reload()
        self.monitor.reload()
        if embedding_changed(before, chosen):
            if self.index_lane.running:
                self.index_lane.cancel()  # it was filling the old space
            self.reindex()
        self.monitor.refresh()
        self._rerun()

    def set_theme(self, name: str) -> None:
        settings = load_settings()
        if settings.theme != name:
            settings.theme = name
            save_settings(settings)
        self._use_theme(name)

    def _use_theme(self, name: str) -> None:
        theme.apply(name)
        if name in self.theme_actions:
            self.theme_actions[name].setChecked(True)
        self.preview.show_passages(self.preview.hit, self.preview.passages) if self.preview.hit else None

    def _files_changed(self, paths: list[str]) -> None:
        """The watcher saw these paths change: re-read just them, in the background."""
        relevant = [p for p in paths if any(p == f or p.startswith(f + os.sep) for f in self._folders)]
        if relevant:
            self.index_lane.update(relevant)
            if not self.progress_view.isVisible():
                self._indexing_started()

    def reindex(self) -> None:
        if self._folders:
            self.index_lane.index(list(self._folders))
            self._indexing_started()

    def _indexing_started(self) -> None:
        self.progress_view.started()
        self.statusBar().showMessage("Indexing…")
        self._update_placeholder()
        self._update_actions()

    def _show_paused(self, paused: bool) -> None:
        self.pause_action.setText("&Resume indexing" if paused else "&Pause indexing")
        message = self.progress_view.show_paused(paused)
        if message:
            self.statusBar().showMessage(message)

    def _show_progress(self, progress: dict) -> None:
        if not self.progress_view.isVisible() and progress.get("phase") in ("scanning", "indexing"):
            self._indexing_started()  # a queued run began as the last one finished
        message = self.progress_view.show_progress(progress)
        if message:
            self.statusBar().showMessage(message)

    def _show_index_message(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def _index_finished(self, ok: bool, summary: str) -> None:
        if self._removal_waits:
            self._removal_waits = False
            self.monitor.remove(list(self._removing))
            if not self.index_lane.running:
                self._indexing_done()
            return
        if self.index_lane.running:
            return  # a queued run already started
        self._indexing_done()
        if self._switch_pending and ok:
            # The new model's vectors are in: searches move over to them.
            self._switch_pending = False
            self.search_lane.reload()
            self.monitor.reload()
        # The summary stays on screen until dismissed or replaced by the next one.
        self.notice.show_notice(f"{summary} ({time.strftime('%H:%M')})")
        if not ok:
            QMessageBox.warning(self, "Indexing stopped", summary)
        self.monitor.refresh()
        if self.search_box.text().strip():
            self._run_search()

    def _indexing_done(self) -> None:
        self.progress_view.hide()
        self._adding = []
        self._update_actions()

    def _populate_folders(self) -> None:
        self.watch_lane.watch(self._folders)
        self.folder_panel.set_folders(self._folders)
        self.filter_bar.set_folders(self._folders)
        self._update_actions()

    def _update_actions(self) -> None:
        self.update_action.setEnabled(bool(self._folders))
        self.pause_action.setEnabled(self.index_lane.running)
        self.failures_action.setEnabled(bool(self._failures))

    def remove_folder(self, folder: str) -> None:
        """Forget a folder, off the UI thread: a running indexer is asked to stop first (its
        child holds the writer), the removal runs on the monitor lane, and indexing of the
        other folders goes on afterwards."""
        self._removing.append(folder)
        self._folders = [f for f in self._folders if f != folder]
        self._adding = [f for f in self._adding if f != folder]
        self._populate_folders()
        self.statusBar().showMessage(f"Removing {os.path.basename(folder) or folder} from the index…")
        if self.index_lane.running:
            self._removal_waits = True
            self._resume_after_removal = True
            self.index_lane.cancel()
        elif not self._removal_waits:
            self.monitor.remove([folder])

    def _folders_removed(self, removed: list[str]) -> None:
        self._removing = [f for f in self._removing if f not in removed]
        if removed:
            names = ", ".join(os.path.basename(f) or f for f in removed)
            self.notice.show_notice(f"Removed {names} from the index. Your files are untouched.")
        if self._resume_after_removal and not self._removing:
            self._resume_after_removal = False
            self.reindex()
        self._rerun()

    # -- status ---------------------------------------------------------------
    def _show_status(self, status: dict) -> None:
        recovered = status.get("recovered")
        if recovered and recovered != self._told_recovered:
            # The index was damaged and set aside: say so, and rebuild it from the files.
            self._told_recovered = recovered
            self._folders = list(status.get("folders", []))
            self._populate_folders()
            self.reindex()
            # Not modal: the window goes on (and rebuilds) while the note is read.
            self.notice_box = QMessageBox(
                QMessageBox.Icon.Information, "Index rebuilt", str(recovered), parent=self
            )
            self.notice_box.setModal(False)
            self.notice_box.show()
        indexed = [str(f) for f in status.get("folders", [])]
        self._adding = [f for f in self._adding if f not in indexed]
        # What the index holds (whoever wrote it), plus what this window is adding, minus
        # what it is removing.
        folders = [f for f in indexed if f not in self._removing] + [
            f for f in self._adding if f not in indexed
        ]
        if folders != self._folders:
            self._folders = folders
            self._populate_folders()
        self._index_known = True
        self._failures = list(status.get("failed", []))
        count = len(self._failures)
        self.folder_panel.show_failures(count)
        files, chunks = status.get("files", 0), status.get("chunks", 0)
        model = status.get("model", "")
        if not self.index_lane.running:
            self.statusBar().showMessage(f"{files:,} files · {chunks:,} passages indexed · model {model}")
        self._files_indexed = int(files)
        self._chunks_indexed = int(chunks)
        self._update_actions()
        self._update_placeholder()
        self.status_shown.emit()
        if self._catch_up_pending:
            # Launch: files added while the app was closed are found by a full scan.
            self._catch_up_pending = False
            if self._folders:
                self.reindex()

    def _show_failures(self) -> None:
        dialog = FailuresDialog(
            self._failures, self, open_file=self.open_path, reveal=self.reveal_path, retry=self.retry_files
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # not exec(): the window behind goes on updating

    def retry_files(self, paths: list[str]) -> None:
        """Read these files again now (the indexer records them anew, indexed or failed)."""
        self.index_lane.update(paths)
        self._indexing_started()

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
            sort = self.filter_bar.sort()
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
        first_run = self._index_known and not self._folders and not self.index_lane.running
        self.side_panel.setVisible(not first_run)  # an empty folder list says nothing
        if first_run:
            self.placeholder.setText("Add a folder to start.")
            self.summary_label.setText("")
            self.stack.setCurrentWidget(self.welcome)
            return
        if no_results:
            text = f"Nothing in your indexed files matches “{no_results}”."
            if self.filter_bar.narrowed():
                text += "\n\nA type, date or folder filter is on: widen it to see more."
        elif not self._folders:
            text = (
                "Add a folder to start.\n\n"
                "localsearch reads the documents in it — text, PDF, Word, HTML, e-books, mail — "
                "and lets you find them by what they mean, not just the words in them. "
                "Everything stays on this computer."
            )
        elif self.index_lane.running and not self._files_indexed:
            text = "Indexing your files… you can search as soon as the first ones are in."
        else:
            text = "Type what you are looking for, in your own words."
        self.placeholder.setText(text)
        if no_results or not self.search_box.text().strip() or self.stack.currentWidget() is self.welcome:
            self.stack.setCurrentWidget(self.placeholder)

    # -- results --------------------------------------------------------------
    def _hit_at(self, index: QModelIndex) -> SearchHit | None:
        hit = index.data(HitRole) if index.isValid() else None
        return hit if isinstance(hit, SearchHit) else None

    def current_hit(self) -> SearchHit | None:
        return self._hit_at(self.results_view.currentIndex())

    def _open_result(self, index: QModelIndex) -> None:
        hit = self._hit_at(index)
        if hit is not None:
            self.open_hit(hit)

    def open_hit(self, hit: SearchHit) -> None:
        """Open a result's file; one on another machine of a shared index is not here to
        open, so say where it is (with its path to copy)."""
        remote = remote_host(hit)
        if remote:
            path = hit.path
            self.notice.show_notice(
                f"{os.path.basename(path) or path} is on {remote}, not on this computer: {path}",
                [("Copy path", lambda: QGuiApplication.clipboard().setText(path))],
            )
            return
        self.open_path(hit.path, hit.page)

    def open_current(self) -> None:
        """Enter: open the current result; on the weaker-matches row, show or hide them."""
        hit = self.current_hit()
        if hit is not None:
            self.open_hit(hit)
        elif self.results_view.currentIndex().data(WeakerRole):
            row = self.results_view.currentIndex().row()
            self.results_model.toggle_weaker()
            self.results_view.setCurrentIndex(self.results_model.index(row, 0))  # stay on it

    def reveal_current(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            self.reveal_path(hit.path)

    def copy_current_path(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            QGuiApplication.clipboard().setText(hit.path)
            self.statusBar().showMessage(f"Copied {hit.path}", 4000)

    def similar_to_current(self) -> None:
        hit = self.current_hit()
        if hit is not None:
            self.find_similar(hit.path)

    def open_path(self, path: str, page: int | None = None) -> None:
        """Open a file (a PDF at `page` where the viewer takes one); say so when it fails."""
        if not os.path.exists(path):
            self._explain_open_failure(path, "it is no longer there (moved or deleted?)")
            return
        launch = opener.launch_for(path, page)
        if launch is None:
            self._explain_open_failure(path, "this system has no program to open files with")
            return
        if page and not launch.at_page:
            self.statusBar().showMessage(
                f"Opening {os.path.basename(path)} — the match is on page {page}", 8000
            )
        opener.start(launch, lambda reason: self.open_failed.emit(path, reason))

    def reveal_path(self, path: str) -> None:
        launch = opener.reveal_launch(path)
        if launch is None:
            self._explain_open_failure(path, "this system has no file manager to show it in", reveal=True)
            return
        opener.start(launch, lambda reason: self.open_failed.emit(path, reason))

    def _explain_open_failure(self, path: str, reason: str, reveal: bool = False) -> None:
        name = os.path.basename(path) or path
        actions: list[tuple[str, Callable[[], None]]] = [
            ("Copy path", lambda: QGuiApplication.clipboard().setText(path)),
        ]
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        if not reveal and os.path.isdir(folder) and folder != path:
            actions.append(("Open its folder", lambda: self.reveal_path(path)))
        verb = "show" if reveal else "open"
        self.notice.show_notice(f"Could not {verb} {name}: {reason}.", actions)

    def _result_menu(self, point: QPoint) -> None:
        hit = self._hit_at(self.results_view.indexAt(point))
        if hit is None:
            return
        menu = QMenu(self)
        open_label = f"Open at page {hit.page}" if hit.page else "Open"
        menu.addAction(open_label, lambda: self.open_hit(hit))
        menu.addAction("Show in folder", lambda: self.reveal_path(hit.path))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(hit.path))
        menu.addSeparator()
        menu.addAction("Find similar files", lambda: self.find_similar(hit.path))
        menu.exec(self.results_view.mapToGlobal(point))

    # -- preview --------------------------------------------------------------
    def set_preview_visible(self, visible: bool) -> None:
        if self.preview_action.isChecked() != visible:
            self.preview_action.setChecked(visible)  # comes back here through toggled
            return
        self._place_preview()
        if visible:
            self._preview_current()

    def _place_preview(self) -> None:
        self.results_pane.place_preview(self.preview_action.isChecked())

    def _results_arrived(self, count: int) -> None:
        if self.preview_action.isChecked():
            self._place_preview()
            self._preview_current()

    def _current_result_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if self.preview.isVisible():
            self._preview_current()

    def _preview_current(self) -> None:
        hit = self.current_hit()
        if hit is None and self.results_model.hits:
            hit = self.results_model.hits[0]
        if hit is None:
            self.preview.show_empty()
            return
        self.preview.show_loading(hit)
        self._preview_query = self.search_box.text().strip()
        self.monitor.read_passages(hit, self._preview_query)

    def _show_passages(self, hit: SearchHit, passages: list[Passage]) -> None:
        if self.preview.hit is not None and self.preview.hit.path == hit.path:
            self.preview.show_passages(hit, passages)
