"""The application: main window, training controller (worker process), sessions, command line."""
