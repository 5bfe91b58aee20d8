"""Credentials in configuration files: find them, scrub them from messages and store names.

polaronflow never prints, logs or stores a MongoDB user name or password. LaunchPad files
(``my_launchpad.yaml``) and JobStore files (``jobflow.yaml``) may hold them as YAML keys
(block or flow style, quoted or not) or inside a ``mongodb://user:password@host`` URI. Every
message about such a file goes through :func:`redact` with :func:`config_secrets` of the file
(a YAML error quotes the offending line, which may be the password line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: Keys whose values are credentials (FireWorks: username/password/authsource; pymongo and
#: maggma: user/password/pwd; ssh tunnels: ssh_password ...).
_KEY = r"(?:[a-z_]*password|passwd|pwd|username|user|authsource|api_key|secret)"
_NOT_SECRETS = {"null", "none", "~", "", "true", "false", "admin"}
_PATTERNS = (
    # key: "double quoted, maybe with spaces"   (block or flow style, JSON too)
    re.compile(rf"""(?i)["']?\b{_KEY}["']?\s*[:=]\s*"((?:[^"\\]|\\.)*)\""""),
    # key: 'single quoted'
    re.compile(rf"""(?i)["']?\b{_KEY}["']?\s*[:=]\s*'((?:[^']|'')*)'"""),
    # key: plain   (up to the end of a flow item or line)
    re.compile(rf"""(?i)["']?\b{_KEY}["']?\s*[:=][ \t]*([^\s,}}\]#"'][^,}}\]#\n]*)"""),
    # user:password@ of a URI
    re.compile(r"(?i)[a-z][a-z0-9+.-]*://([^@/\s'\"]+)@"),
)
_URI_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^@/\s'\"]+@")
# a database URI in a message, possibly cut short by a YAML error's snippet ("mongodb://bob:p ...")
_DB_URI = re.compile(r"(?i)\b(mongodb(?:\+srv)?://)[^\s'\"]*")


def _walk(data: Any, found: set[str]) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and re.fullmatch(_KEY, key, re.IGNORECASE):
                if value is not None and not isinstance(value, (dict, list)):
                    found.add(str(value))
            _walk(value, found)
    elif isinstance(data, list):
        for value in data:
            _walk(value, found)
    elif isinstance(data, str):
        for match in _PATTERNS[-1].finditer(data):
            found.add(match.group(1))


def secrets_in_text(text: str) -> list[str]:
    """Credential strings found in configuration text (YAML, JSON or a URI), longest first.

    Parameters
    ----------
    text
        The file's content; it need not parse (a broken file is searched by pattern).

    Returns
    -------
    list of str
        Each secret, with the ``user`` and ``password`` parts of a ``user:password`` pair.
    """
    import yaml

    found: set[str] = set()
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            found.add(match.group(1).strip())
    try:
        _walk(yaml.safe_load(text), found)
    except yaml.YAMLError:
        pass
    out: set[str] = set()
    for value in found:
        value = value.strip()
        out.add(value)
        if ":" in value and "://" not in value:
            out.update(part for part in value.split(":") if part)
        for variant in (value.strip("[]{}(),"), _unquote(value)):
            out.add(variant)
    return sorted(
        (v for v in out if len(v) >= 2 and v.lower() not in _NOT_SECRETS), key=len, reverse=True
    )


def _unquote(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def config_secrets(*paths: str | Path | None) -> list[str]:
    """Credentials written in configuration files (LaunchPad, JobStore); missing files give none."""
    found: set[str] = set()
    for path in paths:
        if path is None:
            continue
        try:
            text = Path(path).expanduser().read_bytes().decode("utf-8", errors="replace")
        except OSError:
            continue
        found.update(secrets_in_text(text))
    return sorted(found, key=len, reverse=True)


def _scrub_uri(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(0)[len(match.group(1)) :]
    if rest.startswith("***@") or re.fullmatch(r"[\w.,\-]+(?::\d+)?(?:[/?].*)?", rest):
        return match.group(0)  # no credentials (or already scrubbed): keep it readable
    return scheme + "***"


def redact(message: str, secrets: list[str]) -> str:
    """``message`` with every secret and every URI's ``user:password@`` replaced by ``***``."""
    message = _URI_USERINFO.sub(r"\1***@", message)
    message = _DB_URI.sub(_scrub_uri, message)
    for secret in secrets:
        message = message.replace(secret, "***")
    return message
