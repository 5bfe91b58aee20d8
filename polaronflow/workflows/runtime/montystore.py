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

import contextlib
import datetime
import json
import os
import sqlite3
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from maggma.core import Sort, Store, StoreError
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


# --- SQLiteStore: the embedded JobStore at scale ------------------------------------------

#: Fields jobflow's JobStore (``uuid``, ``index``, ``completed_at``, ``name``), its blob store
#: (``blob_uuid``) and ``polaronflow collect`` (``output.dir_name``) query and sort by.
DEFAULT_INDEXED = ("uuid", "index", "completed_at", "name", "output.dir_name", "blob_uuid")
#: Column value of a field that is present with the value None (NULL means absent).
_NONE = "\x00null"
_MISSING = object()


def _get(doc: Any, path: str) -> Any:
    """The value at a dotted ``path`` of ``doc`` (``_MISSING`` when absent)."""
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return _MISSING
    return doc


def _column(value: Any) -> tuple[Any, bool]:
    """(SQLite value, plain): non-scalar values are not indexed (the row is 'not plain')."""
    if value is _MISSING:
        return None, True
    if value is None:
        return _NONE, True
    if isinstance(value, bool):
        return None, False  # Mongo does not equate True and 1; SQLite would
    if isinstance(value, int | float | str):
        return value, True
    return None, False


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime.datetime):
        return {"$date": obj.isoformat()}
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _restore_dates(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and "$date" in obj:
            return datetime.datetime.fromisoformat(obj["$date"])
        return {k: _restore_dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_dates(v) for v in obj]
    return obj


def _loads(text: str) -> dict:
    """Decode a stored document: orjson (maggma's dependency; ~5x faster than ``json``).

    ``json`` writes NaN and Infinity, which orjson does not read: those documents go through
    ``json``. Dates are restored only when one is stored (a walk over the whole document).
    """
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        doc = json.loads(text)
    return _restore_dates(doc) if '{"$date"' in text else doc


def _project(doc: dict, properties: dict | list | None) -> dict:
    """Mongo-style projection (inclusion of dotted paths, or exclusion) of one document."""
    if not properties:
        return doc
    if isinstance(properties, list | tuple):
        properties = dict.fromkeys(properties, 1)
    if all(not v for v in properties.values()):
        for path in properties:
            *parents, last = path.split(".")
            node = doc
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        return doc
    out: dict = {}
    for path, keep in properties.items():
        if not keep:
            continue
        value = _get(doc, path)
        if value is _MISSING:
            continue
        *parents, last = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _sort_key(value: Any) -> tuple:
    """Python sort key in Mongo's type order (absent/None < numbers < strings < others)."""
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (4, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


#: Stores with an open connection in this process, by identity (stores of one file compare
#: equal, so a set would keep only one of them); closed before every fork, see below.
_OPEN: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _close_before_fork() -> None:
    # SQLite forbids carrying a connection across fork(), and an open one in the parent
    # breaks the child's *own* connections to the same file too (SQLite's per-process lock
    # bookkeeping is copied, the fcntl locks are not): "disk I/O error" in `launch` workers.
    # Stores reconnect on their next use.
    for store in list(_OPEN.values()):
        store._release()


os.register_at_fork(before=_close_before_fork)


class SQLiteStore(Store):
    """A maggma ``Store`` of JSON documents in one SQLite file, with indexed fields.

    montydb (maggma's ``MontyStore``) has no indexes: every query decodes every document, so
    a query by uuid grows with the store (~0.4 s at 55 task documents, seconds at 2,000).
    Here each document is a JSON text in a row, and the fields in ``indexed`` are also
    columns with SQLite indexes: equality, ``$in`` and ``$exists`` on them become SQL, and
    so do sorts by them; only the rows SQL selects are decoded, and a query whose criteria,
    properties and sort all name indexed fields is answered from the columns alone. Any
    other criteria are applied to the decoded documents with mongomock's filter (the same
    query language maggma's ``MemoryStore`` speaks).

    Several processes may share the file: SQLite locks it (rollback journal, a busy timeout),
    every update is one ``BEGIN IMMEDIATE`` transaction, and the table is created under a
    file lock. Connections are closed before every ``fork()`` (``launch`` forks its workers)
    and reopened on the next use: SQLite connections must not cross a fork.

    Parameters
    ----------
    database_path
        The SQLite file (created with its folder).
    collection_name
        Table name.
    indexed
        Dotted fields to index; the store's ``key`` is always added.
    timeout
        Seconds to wait for another process's write lock.
    **kwargs
        maggma ``Store`` arguments (``key``, ``last_updated_field``, ...).
    """

    def __init__(
        self,
        database_path: str,
        collection_name: str = "docs",
        indexed: tuple[str, ...] | list[str] = DEFAULT_INDEXED,
        timeout: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self.database_path = str(database_path)
        self.collection_name = collection_name
        self.timeout = timeout
        self.kwargs = kwargs
        super().__init__(**kwargs)
        self.indexed = tuple(dict.fromkeys([*indexed, self.key]))
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._reconnect = False  # connected by the user: reconnect after a fork

    # columns are c0, c1, ... in the order of ``indexed``
    def _col(self, path: str) -> str | None:
        try:
            return f"c{self.indexed.index(path)}"
        except ValueError:
            return None

    @property
    def name(self) -> str:
        """``sqlite://path/collection``."""
        return f"sqlite://{self.database_path}/{self.collection_name}"

    @property
    def _collection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            if not self._reconnect:
                raise StoreError("SQLiteStore: call connect() first")
            self._conn = None  # another process's connection: never use (or close) it here
            self.connect()
        return self._conn  # type: ignore[return-value]

    def __del__(self) -> None:
        # Python's sqlite3.Connection sits in a reference cycle (its statement cache), so it
        # would stay open, untracked, until the next garbage collection: close it with us.
        with contextlib.suppress(Exception):  # a half-built store, interpreter shutdown
            self._release()

    def _release(self) -> None:
        """Close the connection but reconnect on the next use (before a fork)."""
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        _OPEN.pop(id(self), None)

    def connect(self, force_reset: bool = False) -> None:
        """Open the file; create the table and its indexes (under a file lock) if missing."""
        if self._conn is not None and self._pid == os.getpid() and not force_reset:
            return
        from filelock import FileLock

        path = Path(self.database_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=self.timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        table = self.collection_name
        cols = ", ".join(f"c{i}" for i in range(len(self.indexed)))
        with FileLock(str(path) + ".lock"):
            # The rollback journal, not WAL: with WAL, `launch` workers (forked) met "disk I/O
            # error" on their own new connections, and WAL needs shared memory that network
            # file systems (a cluster's home) do not give.
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" '
                # the document last: SQLite reads a row's columns in order, and the indexed
                # columns must not sit behind hundreds of kB of overflow pages
                f"(id INTEGER PRIMARY KEY, plain INTEGER NOT NULL, {cols}, doc TEXT NOT NULL)"
            )
            have = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
            if not {f"c{i}" for i in range(len(self.indexed))} <= have:
                raise StoreError(
                    f"{self.name}: the table was created with other indexed fields; "
                    "open it with the same `indexed`"
                )
            for i in range(len(self.indexed)):
                conn.execute(f'CREATE INDEX IF NOT EXISTS "{table}_c{i}" ON "{table}" (c{i})')
            conn.execute(f'CREATE INDEX IF NOT EXISTS "{table}_plain" ON "{table}" (plain)')
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn, self._pid, self._reconnect = conn, os.getpid(), True
        _OPEN[id(self)] = self

    def close(self) -> None:
        """Close the connection."""
        self._release()
        self._reconnect = False

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SQLiteStore):
            return False
        return (self.database_path, self.collection_name) == (
            other.database_path,
            other.collection_name,
        )

    def __hash__(self) -> int:
        return hash((self.database_path, self.collection_name))

    # --- criteria -> SQL --------------------------------------------------------------

    def _where(self, criteria: dict) -> tuple[str, list[Any], dict]:
        """(SQL condition on plain rows, parameters, residual criteria for Python)."""
        clauses: list[str] = []
        params: list[Any] = []
        residual: dict = {}
        for field_name, cond in criteria.items():
            col = self._col(field_name) if not field_name.startswith("$") else None
            sql = None if col is None else self._clause(col, cond, params)
            if sql is None:
                residual[field_name] = cond
            else:
                clauses.append(sql)
        return " AND ".join(clauses) or "1", params, residual

    @staticmethod
    def _clause(col: str, cond: Any, params: list[Any]) -> str | None:
        def scalar(v: Any) -> bool:
            return v is None or (isinstance(v, int | float | str) and not isinstance(v, bool))

        if not isinstance(cond, dict):
            if not scalar(cond):
                return None
            if cond is None:  # Mongo: None matches absent and None
                params.append(_NONE)
                return f"({col} IS NULL OR {col} = ?)"
            params.append(cond)
            return f"{col} = ?"
        if set(cond) == {"$in"} and all(scalar(v) for v in cond["$in"]):
            values = list(cond["$in"])
            parts = []
            if any(v is None for v in values):
                parts.append(f"{col} IS NULL")
                values = [_NONE if v is None else v for v in values]
            if values:
                params.extend(values)
                parts.append(f"{col} IN ({', '.join('?' * len(values))})")
            return "(" + " OR ".join(parts) + ")" if parts else "0"
        if set(cond) == {"$exists"}:
            return f"{col} IS {'NOT ' if cond['$exists'] else ''}NULL"
        return None

    # --- the Store interface --------------------------------------------------------

    def query(
        self,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict[str, Sort | int] | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> Iterator[dict]:
        """Documents matching ``criteria`` (see the class docstring for what is fast)."""
        conn = self._collection
        table = self.collection_name
        criteria = dict(criteria or {})
        sort = {k: (v.value if isinstance(v, Sort) else int(v)) for k, v in (sort or {}).items()}
        where, params, residual = self._where(criteria)
        any_odd = conn.execute(f'SELECT 1 FROM "{table}" WHERE plain = 0 LIMIT 1').fetchone()
        sort_cols = [self._col(k) for k in sort]
        sql_sort = not any_odd and all(sort_cols)
        order = (
            " ORDER BY "
            + ", ".join(
                f"{c} {'DESC' if d < 0 else 'ASC'}"
                for c, d in zip(sort_cols, sort.values(), strict=True)
            )
            if sort and sql_sort
            else ""
        )
        wanted = (
            list(properties)
            if isinstance(properties, list | tuple)
            else [k for k, v in (properties or {}).items() if v]
        )
        covered = (
            not any_odd
            and not residual
            and bool(wanted)
            and isinstance(properties, list | tuple | dict)
            and all(self._col(p) for p in wanted)
            and sql_sort
        )
        in_sql = not residual and sql_sort  # skip/limit can go to SQL too
        page = ""
        if in_sql and (limit or skip):
            page = f" LIMIT {int(limit) if limit else -1} OFFSET {int(skip)}"
        if covered:
            cols = ", ".join(self._col(p) for p in wanted)
            rows = conn.execute(f'SELECT {cols} FROM "{table}" WHERE {where}{order}{page}', params)
            for row in rows:
                doc: dict = {}
                for path, value in zip(wanted, row, strict=True):
                    if value is None:
                        continue
                    *parents, last = path.split(".")
                    node = doc
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[last] = None if value == _NONE else value
                yield doc
            return
        sql = f'SELECT doc FROM "{table}" WHERE ({where}) OR plain = 0{order}{page}'
        if not any_odd:
            sql = f'SELECT doc FROM "{table}" WHERE {where}{order}{page}'
        rows = conn.execute(sql, params)
        if in_sql and not any_odd:
            for (text,) in rows:
                yield _project(_loads(text), properties)
            return
        # mongomock's filter, imported only here: its import alone takes ~0.2 s
        from mongomock.filtering import filter_applies

        docs = (_loads(text) for (text,) in rows)
        docs = (d for d in docs if filter_applies(criteria, d))
        if sort and not sql_sort:
            docs = iter(self._sorted(list(docs), sort))
        for i, doc in enumerate(docs):
            if i < skip:
                continue
            if limit and i >= skip + limit:
                return
            yield _project(doc, properties)

    @staticmethod
    def _sorted(docs: list[dict], sort: dict) -> list[dict]:
        for path, direction in reversed(list(sort.items())):
            # stable sorts, last key first: the first key decides
            docs.sort(key=lambda d, p=path: _sort_key(_get(d, p)), reverse=direction < 0)
        return docs

    def count(self, criteria: dict | None = None) -> int:
        """Number of documents matching ``criteria``."""
        criteria = criteria or {}
        where, params, residual = self._where(criteria)
        conn = self._collection
        table = self.collection_name
        any_odd = conn.execute(f'SELECT 1 FROM "{table}" WHERE plain = 0 LIMIT 1').fetchone()
        if not residual and not any_odd:
            return conn.execute(f'SELECT COUNT(*) FROM "{table}" WHERE {where}', params).fetchone()[
                0
            ]
        return sum(1 for _ in self.query(criteria))

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        """Insert ``docs``, replacing stored documents with the same ``key`` values."""
        docs = [docs] if isinstance(docs, dict) else list(docs)
        keys = [key] if isinstance(key, str) else list(key or [self.key])
        if self.validator is not None:
            for d in docs:
                if not self.validator.is_valid(d):
                    raise StoreError(f"{self.name}: document does not validate: {d}")
        self._write(docs, keys)

    def _write(self, docs: list[dict], keys: list[str] | None) -> None:
        """One transaction: delete the rows matching each doc's ``keys`` (if any), insert."""
        conn = self._collection
        table = self.collection_name
        ncols = len(self.indexed)
        insert = (
            f'INSERT INTO "{table}" (doc, plain, {", ".join(f"c{i}" for i in range(ncols))}) '
            f"VALUES (?, ?, {', '.join('?' * ncols)})"
        )
        conn.execute("BEGIN IMMEDIATE")
        try:
            for doc in docs:
                values, plain = [], True
                for path in self.indexed:
                    value, ok = _column(_get(doc, path))
                    values.append(value)
                    plain = plain and ok
                if keys:
                    self._delete_same(doc, keys)
                text = json.dumps(doc, default=_json_default)
                conn.execute(insert, [text, int(plain), *values])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _delete_same(self, doc: dict, keys: list[str]) -> None:
        """Delete the stored documents whose ``keys`` equal ``doc``'s (inside a transaction)."""
        conn = self._collection
        table = self.collection_name
        criteria = {k: (None if (v := _get(doc, k)) is _MISSING else v) for k in keys}
        where, params, residual = self._where(criteria)
        if residual:  # a key that is not indexed, or not a scalar: compare decoded documents
            ids = [
                row_id
                for row_id, text in conn.execute(f'SELECT id, doc FROM "{table}"')
                if all(
                    (None if (got := _get(_loads(text), k)) is _MISSING else got) == v
                    for k, v in criteria.items()
                )
            ]
        else:
            ids = [r[0] for r in conn.execute(f'SELECT id FROM "{table}" WHERE {where}', params)]
        if ids:
            conn.execute(f'DELETE FROM "{table}" WHERE id IN ({", ".join("?" * len(ids))})', ids)

    def remove_docs(self, criteria: dict) -> None:
        """Delete the documents matching ``criteria``."""
        from mongomock.filtering import filter_applies

        conn = self._collection
        table = self.collection_name
        where, params, residual = self._where(criteria)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if residual:
                ids = [
                    row_id
                    for row_id, text in conn.execute(
                        f'SELECT id, doc FROM "{table}" WHERE ({where}) OR plain = 0', params
                    )
                    if filter_applies(criteria, _loads(text))
                ]
                conn.execute(
                    f'DELETE FROM "{table}" WHERE id IN ({", ".join("?" * len(ids))})', ids
                )
            else:
                conn.execute(f'DELETE FROM "{table}" WHERE {where}', params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def ensure_index(self, key: str, unique: bool = False) -> bool:
        """True when ``key`` is one of the indexed fields (set at construction)."""
        return key in self.indexed and not unique

    def groupby(
        self,
        keys: list[str] | str,
        criteria: dict | None = None,
        properties: dict | list | None = None,
        sort: dict[str, Sort | int] | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> Iterator[tuple[dict, list[dict]]]:
        """Group the matching documents by the values of ``keys`` (in Python)."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        if isinstance(properties, list | tuple):
            properties = [*properties, *keys]
        elif isinstance(properties, dict):
            properties = {**properties, **dict.fromkeys(keys, 1)}
        groups: dict[str, tuple[dict, list[dict]]] = {}
        for doc in self.query(criteria, properties, sort, skip, limit):
            ident = {k: (None if (v := _get(doc, k)) is _MISSING else v) for k in keys}
            tag = json.dumps(ident, sort_keys=True, default=str)
            groups.setdefault(tag, (ident, []))[1].append(doc)
        yield from groups.values()


#: The embedded JobStore's SQLite file inside the project's ``jobstore/`` folder.
EMBEDDED_FILE = "polaronflow.sqlite"
#: (collection, key) of the embedded JobStore's documents and of its blobs (atomate2 ``data``).
EMBEDDED_COLLECTIONS = (("outputs", "uuid"), ("outputs_blobs", "blob_uuid"))


def embedded_stores(folder: str | Path) -> tuple[SQLiteStore, SQLiteStore]:
    """The embedded JobStore's two stores (documents, blobs) in ``folder``.

    A folder written by an earlier polaronflow (montydb, ``.monty.storage``) is copied into
    the SQLite file once, under the folder's lock, the first time it is opened; the montydb
    files are left in place.

    Parameters
    ----------
    folder
        The project's ``jobstore/`` folder.

    Returns
    -------
    tuple of SQLiteStore
        The documents (key ``uuid``) and the blobs (key ``blob_uuid``).
    """
    from filelock import FileLock

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / EMBEDDED_FILE
    stores = tuple(
        SQLiteStore(str(path), collection_name=name, key=key) for name, key in EMBEDDED_COLLECTIONS
    )
    if (root / _IDENT).is_file() and not path.exists():
        with FileLock(str(root / ".migrate.lock")):
            if not path.exists():
                _migrate_montydb(root, stores)
    return stores  # type: ignore[return-value]


def _migrate_montydb(root: Path, stores: tuple[SQLiteStore, ...]) -> None:
    """Copy the montydb collections of ``root`` into ``stores`` (a temporary file, renamed)."""
    path = Path(stores[0].database_path)
    tmp = path.with_name(path.name + ".migrating")
    tmp.unlink(missing_ok=True)
    for name, key in EMBEDDED_COLLECTIONS:
        old = SharedMontyStore(name, database_path=str(root), database_name="polaronflow", key=key)
        old.connect()
        new = SQLiteStore(str(tmp), collection_name=name, key=key)
        new.connect()
        docs = [{k: v for k, v in d.items() if k != "_id"} for d in old.query()]
        for i in range(0, len(docs), 200):
            new._write(docs[i : i + 200], keys=None)  # every document is a new row
        new.close()
        old.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.replace(path)
