"""The frozen app's entry point (PyInstaller's script): a child process when the app re-runs
itself for one, else the command line, which opens the window when given no command."""

from localsearch.launch import frozen_main

raise SystemExit(frozen_main())
