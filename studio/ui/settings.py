"""Where the window remembers things between runs (size, splitters, last checkpoints, backend).

``GENERATIVE_STUDIO_SETTINGS`` names an INI file to use instead of the user's
own settings: the tests set it, so no test reads or changes a person's setup.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

SETTINGS_ENV = "GENERATIVE_STUDIO_SETTINGS"


def app_settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "generative-studio", "studio")


def saved_backend(settings: QSettings | None = None) -> tuple[str | None, str | None]:
    """The backend and device chosen when the app last closed (None: never saved)."""
    s = settings or app_settings()
    backend, device = s.value("backend/name"), s.value("backend/device")
    return (str(backend) if backend else None, str(device) if device else None)
