"""The embedded LaunchPad's files: read once, saved by appending, first match copied only.

``launchpad.json`` keeps mongomock-persistence's format, ``{database: {collection: {"name":
..., "documents": [[_id, document], ...]}}}`` in MongoDB extended JSON (bson.json_util's
relaxed mode: ``{"$oid": ...}``, ``{"$date": ...}``), so mongomock-persistence and
``bson.json_util.loads`` still read it. What changes is the cost at scale (2,000 Fireworks,
13 MB):

* Saves while a LaunchPad is open (``polaronflow launch`` saves each checkout and each finished
  job) append the documents changed since the previous save to ``launchpad.journal``, one
  synced line per save, instead of rewriting 13 MB (:class:`StoreFile`). The first save after
  opening, a new collection, and a journal past a quarter of the file rewrite
  ``launchpad.json`` (atomically, with a token the new journal names); closing rewrites it and
  removes the journal, so at rest the store is one file, as before. A reader
  (:func:`read_state`) applies the journal only when it names the file's token, and only its
  complete lines: a save killed mid-write is not read, the saves before it are.
* Encoding: the stdlib's C encoder, each document's text kept between saves; only documents
  inserted, replaced or updated since the last save are encoded again (mongomock updates
  documents in place; :func:`install` marks the ones an update touches). Bytes are those
  bson.json_util.dumps writes, except NaN and ±Infinity, written as the JSON literals
  ``NaN``/``Infinity`` that Python's json (so bson.json_util.loads) reads.
* Reading: one parse (the C parser; only objects whose first key starts with ``$`` go through
  bson.json_util's hook) with the cyclic garbage collector paused; read-only views parse with
  orjson and keep extended JSON as it is. The old path parsed the file twice through
  bson.json_util's Python hooks.
* ``Collection.find_one`` on these stores copies only the first match: mongomock's cursor
  deep-copies every matching document before returning the first, and FireWorks' checkout
  (``find_one_and_update`` on every READY Firework, sorted by priority) asked for hundreds.
* Queries that are exactly ``{"_id": ObjectId}``, ``{"fw_id": int}`` or ``{"launch_id": int}``
  (FireWorks makes ~20 per job) are answered from the document key or an index
  (:func:`_lookup`, every candidate checked against the stored document) instead of a scan.

Only stores opened by :func:`load_store` (they carry the caches) behave differently; other
mongomock users in the process are untouched.
"""

from __future__ import annotations

import contextlib
import gc
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_state = threading.local()


class WrongShapeError(ValueError):
    """The file is JSON but not a mongomock-persistence store."""


_installed = False


def _json_options():
    from bson import json_util

    return json_util.DEFAULT_JSON_OPTIONS


def _object_hook(dct: dict[str, Any]) -> Any:
    # bson.json_util.loads passes every object through its hook; only extended-JSON objects
    # ({"$oid": ...}, {"$date": ...}, ...) start with "$", and those go through the same hook
    for key in dct:
        if key[:1] == "$":
            from bson import json_util

            return json_util.object_hook(dct, _json_options())
        return dct
    return dct


def _default(obj: Any) -> Any:
    from bson import json_util

    return json_util.default(obj, _json_options())


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector: building ~10^5 containers otherwise triggers repeated full
    collections over the growing heap (nothing built here is cyclic garbage)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def loads(text: str) -> Any:
    """Decode the file's text as ``bson.json_util.loads`` does (one C-level parse)."""
    with gc_paused():
        return json.loads(text or "{}", object_hook=_object_hook)


def check_shape(data: Any) -> bool:
    """True when ``data`` has mongomock-persistence's shape ``{db: {collection: {...}}}``."""
    return isinstance(data, dict) and all(
        isinstance(db, dict) and all(isinstance(c, dict) for c in db.values())
        for db in data.values()
    )


def documents(data: dict, database: str, collection: str) -> list[dict]:
    """The documents of one collection of a decoded file, as they are (not copies).

    Raises
    ------
    WrongShapeError
        The collection is not ``{"name": ..., "documents": [[_id, document], ...]}``.
    """
    coll = (data.get(database) or {}).get(collection) or {}
    pairs = coll.get("documents", [])
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[1], dict) for p in pairs
    ):
        raise WrongShapeError(f"collection {database}.{collection} has the wrong shape")
    return [doc for _, doc in pairs]


#: Database of the snapshot holding the token its journal names (mongomock-persistence's shape;
#: removed from the store when read).
META_DB = "polaronflow_file"
#: The journal beside ``launchpad.json``: saves appended while a LaunchPad is open.
JOURNAL_SUFFIX = ".journal"
#: A save rewrites the snapshot instead of appending once the journal exceeds this share of
#: the snapshot (readers parse both) or this many bytes, whichever is larger.
COMPACT_SHARE, COMPACT_MIN = 0.25, 1_000_000


def journal_path(db_file: Path) -> Path:
    return db_file.with_name(db_file.stem + JOURNAL_SUFFIX)


def _key(ident: Any) -> Any:
    try:
        hash(ident)
        return ident
    except TypeError:  # {"$oid": ...} from a raw parse, or a document _id
        return json.dumps(ident, sort_keys=True, default=str)


def _replay(data: dict, records: list[Any]) -> None:
    """Apply journal records (``[[db, collection, deleted ids, [[id, doc], ...]], ...]``) in
    place: deletions first, then each document set (kept in place, new ones appended)."""
    indexes: dict[tuple[str, str], dict[Any, int]] = {}
    for record in records:
        for db_name, name, deleted, pairs in record:
            coll = data.setdefault(db_name, {}).setdefault(name, {"name": name, "documents": []})
            docs = coll["documents"]
            index = indexes.get((db_name, name))
            if deleted:
                gone = {_key(i) for i in deleted}
                docs[:] = [pair for pair in docs if _key(pair[0]) not in gone]
                index = None
            if index is None:
                index = indexes[db_name, name] = {_key(p[0]): i for i, p in enumerate(docs)}
            for pair in pairs:
                key = _key(pair[0])
                at = index.get(key)
                if at is None:
                    index[key] = len(docs)
                    docs.append(pair)
                else:
                    docs[at] = pair


def _read_journal(path: Path, token: str | None, decode) -> tuple[str | None, list[Any]]:
    """The journal's token and, when it is ``token``, its complete records (a torn last line,
    left by a save killed mid-write, is not one)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, []
    lines = raw.split(b"\n")
    try:
        head = json.loads(lines[0])
    except ValueError:
        return None, []
    found = head.get("snapshot") if isinstance(head, dict) else None
    if found is None or found != token:
        return found, []
    records = []
    for line in lines[1:-1]:  # the part after the last newline is empty or torn
        try:
            records.append(decode(line)["c"])
        except (ValueError, KeyError, TypeError):
            break
    return found, records


def read_state(db_file: Path, raw: bool = False) -> dict:
    """The store's content as saved: the snapshot and, when it names it, the journal.

    ``raw`` leaves extended JSON as it is (``{"$oid": ...}``, ``{"$date": ...}``) and parses
    with orjson: for readers that need no BSON types. Read without the lock, the snapshot and
    the journal may come from either side of a rewrite of both: a journal that names another
    snapshot is not applied, and the pair is read again if the snapshot changed meanwhile (a
    snapshot alone is always a whole, earlier state).
    """
    import os

    decode = _raw_loads if raw else loads
    for _ in range(5):
        with open(db_file, "rb") as fh:
            seen = os.fstat(fh.fileno())
            data = decode(fh.read())
        if not check_shape(data):
            raise WrongShapeError("not a LaunchPad store (wrong shape)")
        meta = data.pop(META_DB, None) or {}
        try:
            token = meta["journal"]["documents"][0][1]["token"]
        except (KeyError, IndexError, TypeError):
            token = None
        found, records = _read_journal(journal_path(db_file), token, decode)
        if token is None or found == token:
            break
        now = os.stat(db_file)
        if (now.st_ino, now.st_mtime_ns, now.st_size) == (
            seen.st_ino,
            seen.st_mtime_ns,
            seen.st_size,
        ):
            break  # no rewrite in between: the snapshot's journal was never started
    with gc_paused():
        _replay(data, records)
    return data


def _raw_loads(text: bytes | str) -> Any:
    import orjson

    with gc_paused():
        try:
            return orjson.loads(text or b"{}")
        except orjson.JSONDecodeError:
            # NaN/Infinity literals (json's, which orjson does not read) or not JSON at all
            return json.loads(text or "{}")


def load_store(db_file: Path):
    """Read ``db_file`` (and its journal) into a mongomock ``ServerStore`` that saves
    incrementally (:class:`StoreFile`, at ``store._pf_file``).

    Raises
    ------
    OSError, ValueError
        The file cannot be read or is not JSON (:class:`WrongShapeError` for JSON of the
        wrong shape).
    """
    install()
    import mongomock.store as ms

    data = read_state(db_file)
    with gc_paused():
        store = ms.ServerStore.__new__(ms.ServerStore)
        # mongomock-persistence's ServerStore reads (and at exit writes) the file itself: built
        # here from the one parse, with no exit-time write
        store._filename = None
        # DatabaseStore.from_dict is mongomock-persistence's (imported by install())
        store._databases = {name: ms.DatabaseStore.from_dict(db) for name, db in data.items()}
        for db in store._databases.values():
            for coll in db._collections.values():
                coll._pf_cache = {}
    store._pf_file = StoreFile(store, db_file)
    return store


class StoreFile:
    """Save a store to its file: a whole snapshot first, then journal records.

    The first save after opening, a change of collections and a journal grown past
    :data:`COMPACT_SHARE` of the snapshot write the snapshot (``launchpad.json``, atomically,
    with a new token) and start a new journal naming it; any other save appends one line to
    the journal with the documents changed since the previous save and the ids deleted, and
    syncs it. :meth:`close` writes the snapshot and removes the journal, so a closed store is
    one file in mongomock-persistence's format, as before.
    """

    def __init__(self, store, db_file: Path) -> None:
        self.store, self.db_file = store, db_file
        self.journal = journal_path(db_file)
        self.layout: list | None = None  # collections at the last save (None: never saved)
        self.snapshot_bytes = 0
        self.journal_bytes = 0
        self._pending: list = []

    def _layout(self) -> list:
        return [
            (db_name, name, id(coll), coll.name)
            for db_name, db in self.store._databases.items()
            for name, coll in db._collections.items()
        ]

    def _scan(self, dumps) -> list[tuple[str, list[tuple[str, Any, list[str], list[str]]]]]:
        """Per database, per collection: its store, every document's text, the changed ones
        and the deleted ids (as JSON); the caches' new state waits for :meth:`_commit`."""
        from mongomock.helpers import hashdict

        out = []
        self._pending = []
        for db_name, db in self.store._databases.items():
            colls = []
            for name, coll in db._collections.items():
                old = coll.__dict__.get("_pf_cache") or {}
                saved = coll.__dict__.get("_pf_saved") or {}
                moved = coll.__dict__.get("_pf_inserted") or set()
                new: dict[Any, str] = {}
                changed: list[str] = []
                with coll._rwlock.reader():
                    items = list(coll._documents.items())
                for key, doc in items:
                    text = old.get(key)
                    if text is None:
                        ident = dict(key) if isinstance(key, hashdict) else key
                        text = dumps([ident, doc])
                        changed.append(text)
                    new[key] = text
                # deleted, or deleted and inserted again (it moves to the end, as in mongomock)
                deleted = [saved[k] for k in saved if k not in new or k in moved]
                if deleted or len(saved) != len(new):  # the ids (as JSON) saved now
                    saved = {
                        k: saved.get(k) or dumps(dict(k) if isinstance(k, hashdict) else k)
                        for k in new
                    }
                colls.append((name, coll, new, changed, deleted))
                self._pending.append((coll, new, saved))
            out.append((db_name, colls))
        return out

    def _commit(self) -> None:
        """The scanned state is on disk: it is what the next save compares with. (A save that
        failed leaves the caches as they were, so the next one writes its documents too.)"""
        for coll, new, saved in self._pending:
            coll._pf_cache, coll._pf_saved, coll._pf_inserted = new, saved, set()
        self._pending = []

    def save(self) -> None:
        """Save the store as it is now (see the class)."""
        dumps = json.JSONEncoder(default=_default).encode
        layout = self._layout()
        scan = self._scan(dumps)
        if self.layout != layout or self.journal_bytes > max(
            COMPACT_MIN, COMPACT_SHARE * self.snapshot_bytes
        ):
            self._snapshot(scan, dumps, journal=True)
            self._commit()
            self.layout = layout
            return
        parts = [
            f"[{dumps(db_name)}, {dumps(name)}, [{', '.join(deleted)}], [{', '.join(changed)}]]"
            for db_name, colls in scan
            for name, _, _, changed, deleted in colls
            if changed or deleted
        ]
        if parts:
            line = ('{"c": [' + ", ".join(parts) + "]}\n").encode()
            _append_synced(self.journal, line)
            self.journal_bytes += len(line)
        self._commit()

    def close(self) -> None:
        """Write the whole store as one snapshot and remove the journal."""
        dumps = json.JSONEncoder(default=_default).encode
        self._snapshot(self._scan(dumps), dumps, journal=False)
        self._commit()
        self.layout = None

    def _snapshot(self, scan, dumps, journal: bool) -> None:
        import secrets

        from polaronflow.fileio import write_text_atomic

        token = secrets.token_hex(8)
        dbs = []
        for db_name, colls in scan:
            body = ", ".join(
                f'{dumps(name)}: {{"name": {dumps(coll.name)}, "documents": ['
                + ", ".join(texts.values())
                + "]}"
                for name, coll, texts, _, _ in colls
            )
            dbs.append(f"{dumps(db_name)}: {{{body}}}")
        if journal:
            dbs.append(
                f'"{META_DB}": {{"journal": {{"name": "journal", "documents": '
                f'[[1, {{"token": "{token}"}}]]}}}}'
            )
        text = "{" + ", ".join(dbs) + "}"
        # the snapshot first: a journal naming another snapshot is never applied
        write_text_atomic(self.db_file, text)
        self.snapshot_bytes = len(text)
        if journal:
            write_text_atomic(self.journal, json.dumps({"snapshot": token}) + "\n")
            self.journal_bytes = 0
        else:
            with contextlib.suppress(FileNotFoundError):
                self.journal.unlink()


def _append_synced(path: Path, data: bytes) -> None:
    """Append ``data`` and sync it; on failure (a full disk) cut the file back, so that a
    half-written line never hides the lines appended after it."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def install() -> None:
    """Patch mongomock (once) so that stores from :func:`load_store` know what changed and
    ``find_one`` copies one document. Importing mongomock_persistence patches the same classes
    (its file format); it is imported first so its patches stay underneath."""
    global _installed
    if _installed:
        return
    from collections.abc import Mapping

    import mongomock_persistence  # noqa: F401  (its class patches, made before ours)
    from bson import ObjectId
    from mongomock.collection import Collection
    from mongomock.helpers import hashdict
    from mongomock.store import CollectionStore

    set_item = CollectionStore.__setitem__

    def __setitem__(self, key, val):
        cache = self.__dict__.get("_pf_cache")
        if cache is not None:
            cache.pop(key, None)
            if key not in self._documents:  # (again): it goes to the end of the collection
                self.__dict__.setdefault("_pf_inserted", set()).add(key)
        set_item(self, key, val)
        if "_pf_index" in self.__dict__:
            _reindex(self, key, val)

    update = Collection._update

    def _update(self, *args, **kwargs):
        # mongomock changes the stored document in place: remember which collection is updating
        # and which documents it touched (their text is dropped, their ids indexed again)
        previous = getattr(_state, "updating", None), getattr(_state, "touched", None)
        _state.updating, _state.touched = self, []
        try:
            return update(self, *args, **kwargs)
        finally:
            touched = _state.touched
            _state.updating, _state.touched = previous
            store = self._store
            if "_pf_index" in store.__dict__:
                for key in touched:
                    _reindex(store, key, store._documents.get(key))

    iter_documents = Collection._iter_documents

    def _iter_documents(self, filter):
        store = self._store
        cache = store.__dict__.get("_pf_cache")
        docs = None
        if cache is not None and type(filter) is dict and len(filter) == 1:
            ((field, value),) = filter.items()
            if field == "_id" and type(value) is ObjectId:
                # the one document stored under that key (FireWorks updates by _id after each
                # find_one_and_update/replace); mongomock scanned them all
                with store._rwlock.reader():
                    doc = store._documents.get(value)
                docs = iter([doc] if doc is not None and doc.get("_id") == value else [])
            elif field in INDEXED and type(value) is int:
                found = _lookup(store, field, value)
                docs = None if found is None else iter(found)
        if docs is None:
            docs = iter_documents(self, filter)
        if cache is None or getattr(_state, "updating", None) is not self:
            return docs
        return _forgetting(docs, cache, hashdict)

    find_one = Collection.find_one

    def _find_one(self, filter=None, *args, **kwargs):
        if self._store.__dict__.get("_pf_cache") is None:
            return find_one(self, filter, *args, **kwargs)
        if filter is None:
            filter = {}
        if not isinstance(filter, Mapping):
            filter = {"_id": filter}
        cursor = self.find(filter, *args, **kwargs)
        factory = getattr(cursor, "_factory", None)
        if factory is None or getattr(cursor, "_skip", 0) or self.codec_options.tz_aware:
            return next(cursor, None)
        # mongomock's Cursor copies every match first; its dataset generator copies lazily
        return next(factory(), None)

    CollectionStore.__setitem__ = __setitem__
    Collection._update = _update
    Collection._iter_documents = _iter_documents
    Collection.find_one = _find_one
    _installed = True


def _forgetting(docs, cache: dict, hashdict) -> Iterator[dict]:
    touched = getattr(_state, "touched", None)
    for doc in docs:
        key = doc.get("_id")
        key = hashdict(key) if isinstance(key, dict) else key
        cache.pop(key, None)
        if touched is not None:
            touched.append(key)
        yield doc


#: Fields answered from an index when a query is exactly ``{field: int}``: FireWorks looks
#: Fireworks and launches up by id ~10 times per job, and mongomock scanned every document.
INDEXED = ("fw_id", "launch_id")
_UNBUILT = object()


def _index_value(doc: dict | None, field: str) -> Any:
    """The value to index ``doc`` under: an int, None (no such field: matches no int query)
    or _UNBUILT for anything an int query could match otherwise (a list, a float, ...)."""
    if doc is None:
        return None
    value = doc.get(field)
    if value is None or type(value) is int:
        return value
    return _UNBUILT


def _lookup(store, field: str, value: int) -> list[dict] | None:
    """The documents whose ``field`` is ``value``, from the collection's index (built on first
    use); None when the index cannot answer (the scan then does, as in mongomock).

    Entries are only ever added (inserts, replacements and updates index their document
    again); every candidate is checked against the stored document, so entries left by a
    deletion or a change of value are harmless. More than one match: the scan answers, in
    mongomock's order.
    """
    indexes = store.__dict__.setdefault("_pf_index", {})
    index = indexes.get(field, _UNBUILT)
    if index is _UNBUILT:
        index = {}
        with store._rwlock.reader():
            for key, doc in store._documents.items():
                found = _index_value(doc, field)
                if found is _UNBUILT:
                    index = None
                    break
                if found is not None:
                    index.setdefault(found, []).append(key)
        indexes[field] = index
    if index is None:
        return None
    with store._rwlock.reader():
        docs = [store._documents.get(key) for key in index.get(value, ())]
    out = [d for d in docs if d is not None and _index_value(d, field) == value]
    return None if len(out) > 1 else out


def _reindex(store, key: Any, doc: dict | None) -> None:
    for field, index in store.__dict__["_pf_index"].items():
        if index is None:
            continue
        found = _index_value(doc, field)
        if found is _UNBUILT:
            store.__dict__["_pf_index"][field] = None  # a value the index cannot answer for
        elif found is not None and key not in index.setdefault(found, []):
            index[found].append(key)
