"""maggma's ``MontyStore`` made safe for several processes sharing one montydb folder.

Two races, both seen with two ``polaronflow launch`` workers whose jobs start together:

* maggma's ``MontyStore.connect`` calls montydb's ``set_storage`` on every connection, which
  rewrites the repository's ``.monty.storage`` file (truncate, then write); a process connecting
  at that instant reads an empty file ("Empty module name");
* montydb's SQLite storage creates a collection on its first write: the collection's file
  appears before its table does, and a process that sees the file then finds "no such table".

:class:`SharedMontyStore` connects under a file lock in the repository folder: it writes the
configuration only when it is missing or different, and creates the collection (file and
table) before releasing the lock. Everything else is maggma's store.
"""

from __future__ import annotations

from pathlib import Path

from maggma.stores import MontyStore

#: montydb's storage-name file and configuration file in a repository folder.
_IDENT = ".monty.storage"
_CONFIG = "monty.storage.cfg"


class SharedMontyStore(MontyStore):
    """A ``MontyStore`` whose ``connect`` never rewrites an existing repository configuration."""

    def _configured(self) -> bool:
        root = Path(self.database_path)
        ident = root / _IDENT
        try:
            return ident.read_text().strip() == self.storage and (root / _CONFIG).is_file()
        except OSError:
            return False

    def connect(self, force_reset: bool = False) -> None:
        """Open the montydb client; create the configuration and the collection if missing."""
        if self._coll and not force_reset:
            return
        from montydb import MontyClient, set_storage

        if self.database_path == ":memory:":
            super().connect(force_reset=force_reset)
            return
        from filelock import FileLock

        root = Path(self.database_path)
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root / ".configure.lock")):
            if not self._configured():
                set_storage(self.database_path, storage=self.storage, **self.storage_kwargs)
            client = MontyClient(self.database_path, **self.client_kwargs)
            database = client[self.database_name]
            if self.collection_name not in database.list_collection_names():
                database.create_collection(self.collection_name)
            self._coll = database[self.collection_name]
