"""Settings: the typed schema (`conf.settings`) and its layered loader (`conf.loader`)."""

from conf.loader import SettingsError, SettingsSource, load_settings, update
from conf.settings import Settings

__all__ = ["Settings", "SettingsError", "SettingsSource", "load_settings", "update"]
