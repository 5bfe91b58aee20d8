"""The embedded LaunchPad's file: read once, written incrementally, first match copied only.

``launchpad.json`` keeps mongomock-persistence's format, ``{database: {collection: {"name":
..., "documents": [[_id, document], ...]}}}`` in MongoDB extended JSON (bson.json_util's
relaxed mode: ``{"$oid": ...}``, ``{"$date": ...}``), so mongomock-persistence and
``bson.json_util.loads`` still read it. What changes is the cost at scale (2,000 Fireworks,
13 MB):

* :func:`load_store` parses the file once (the stdlib's C parser; only objects whose first key
  starts with ``$`` go through bson.json_util's hook) with the cyclic garbage collector paused,
  and builds mongomock's store from the result. The old path parsed the file twice (a
  readability check, then mongomock-persistence) through bson.json_util's Python hooks.
* :class:`StoreEncoder` writes the store with the stdlib's C encoder and keeps each document's
  encoded text: a save re-encodes only the documents inserted, replaced or updated since the
  last one (mongomock updates documents in place; :func:`install` marks the ones an update
  touches) and joins the rest. bson.json_util walked every value in Python on every save.
  Bytes on disk are those bson.json_util.dumps writes, except NaN and ±Infinity floats, written
  as the JSON literals ``NaN``/``Infinity`` that Python's json (so bson.json_util.loads) reads.
* ``Collection.find_one`` on these stores copies only the first match: mongomock's cursor
  deep-copies every matching document before returning the first, and FireWorks' checkout
  (``find_one_and_update`` on every READY Firework, sorted by priority) asked for hundreds.

Only stores opened by :func:`load_store` (they carry the encoder's cache) behave differently;
other mongomock users in the process are untouched.
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


def load_store(db_file: Path):
    """Read ``db_file`` into a mongomock ``ServerStore`` that saves incrementally.

    Raises
    ------
    OSError, ValueError
        The file cannot be read or is not JSON (:class:`WrongShapeError` for JSON of the
        wrong shape).
    """
    install()
    import mongomock.store as ms

    data = loads(db_file.read_text(encoding="utf-8"))
    if not check_shape(data):
        raise WrongShapeError("not a LaunchPad store (wrong shape)")
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
    store._pf_encoder = StoreEncoder(store)
    # The store lives as long as the process's LaunchPad: without this every later collection
    # (FireWorks and mongomock build many small containers per query) re-scans it all.
    # Frozen objects are still freed by reference counting; the store holds no cycles.
    gc.freeze()
    return store


class StoreEncoder:
    """Encode a store as ``bson.json_util.dumps(store.to_dict())`` would, re-encoding only
    documents changed since the previous call."""

    def __init__(self, store) -> None:
        self.store = store

    def dumps(self) -> str:
        from mongomock.helpers import hashdict

        dumps = json.JSONEncoder(default=_default).encode
        out: list[str] = ["{"]  # joined once: the text is ~6 kB per Firework
        for i, (db_name, db) in enumerate(self.store._databases.items()):
            out.append(f"{', ' if i else ''}{dumps(db_name)}: {{")
            for j, (name, coll) in enumerate(db._collections.items()):
                out.append(
                    f'{", " if j else ""}{dumps(name)}: {{"name": {dumps(coll.name)}, '
                    '"documents": ['
                )
                old = coll.__dict__.get("_pf_cache") or {}
                new: dict[Any, str] = {}
                with coll._rwlock.reader():
                    items = list(coll._documents.items())
                for key, doc in items:
                    text = old.get(key)
                    if text is None:
                        ident = dict(key) if isinstance(key, hashdict) else key
                        text = dumps([ident, doc])
                    new[key] = text
                    out.append(text)
                    out.append(", ")
                if items:
                    out.pop()
                coll._pf_cache = new
                out.append("]}")
            out.append("}")
        out.append("}")
        return "".join(out)


def install() -> None:
    """Patch mongomock (once) so that stores from :func:`load_store` know what changed and
    ``find_one`` copies one document. Importing mongomock_persistence patches the same classes
    (its file format); it is imported first so its patches stay underneath."""
    global _installed
    if _installed:
        return
    from collections.abc import Mapping

    import mongomock_persistence  # noqa: F401  (its class patches, made before ours)
    from mongomock.collection import Collection
    from mongomock.helpers import hashdict
    from mongomock.store import CollectionStore

    set_item = CollectionStore.__setitem__

    def __setitem__(self, key, val):
        cache = self.__dict__.get("_pf_cache")
        if cache is not None:
            cache.pop(key, None)
        set_item(self, key, val)

    update = Collection._update

    def _update(self, *args, **kwargs):
        # mongomock changes the stored document in place: remember which collection is updating
        previous = getattr(_state, "updating", None)
        _state.updating = self
        try:
            return update(self, *args, **kwargs)
        finally:
            _state.updating = previous

    iter_documents = Collection._iter_documents

    def _iter_documents(self, filter):
        docs = iter_documents(self, filter)
        if getattr(_state, "updating", None) is not self:
            return docs
        cache = self._store.__dict__.get("_pf_cache")
        return docs if cache is None else _forgetting(docs, cache, hashdict)

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
    for doc in docs:
        key = doc.get("_id")
        cache.pop(hashdict(key) if isinstance(key, dict) else key, None)
        yield doc
