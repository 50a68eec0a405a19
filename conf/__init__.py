"""Settings: the typed schema (`conf.settings`) and its layered loader (`conf.loader`)."""

from conf.loader import SettingsError, load_settings
from conf.settings import Settings

__all__ = ["Settings", "SettingsError", "load_settings"]
