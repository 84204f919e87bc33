"""Store stage: SQLite (WAL) through sqlite-utils, with versioned migrations."""

from appliance.store.db import Store
from appliance.store.migrations import MIGRATIONS, migrate

__all__ = ["MIGRATIONS", "Store", "migrate"]
