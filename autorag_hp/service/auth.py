"""API keys and trial tickets.

Keys come from a JSON (or YAML) file or the ``AUTORAG_HP_KEYS`` environment variable::

    {
      "clients": {"web": {"ask": "ask-key-of-web", "feedback": "feedback-key-of-web"}},
      "admin": ["admin-key"],
      "secret": "optional; signs trial tickets (default: derived from the keys)"
    }

* an **ask** key may call ``POST /v1/ask`` only;
* a **feedback** key may give feedback on the trials its own client asked (and read the statistics);
* an **admin** key may do everything, including feedback on any trial.

A client may not steer the tuner with another client's trials: ``/v1/ask`` returns a *ticket*
``<trial id>.<signature>`` where the signature is an HMAC of (study, trial id, client); feedback checks it
against the client of the feedback key. Replicas that share the keys file verify each other's tickets.

>>> ring = KeyRing.from_mapping({"clients": {"web": {"ask": "a" * 16, "feedback": "f" * 16}}, "admin": ["x" * 16]})
>>> ring.lookup("a" * 16)
Principal(client='web', role='ask')
>>> t = ring.ticket("s", "abc", "web")
>>> ring.parse_ticket("s", t, "web")
'abc'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("ask", "feedback", "admin")
MIN_KEY_LEN = 16


class TicketError(ValueError):
    """A trial ticket is malformed, or was issued to another client."""


@dataclass(frozen=True)
class Principal:
    client: str
    role: str


def _h(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Maps API keys (stored as SHA-256 digests) to principals; signs and checks trial tickets."""

    def __init__(self, principals: Mapping[str, Principal], secret: bytes, open_access: bool = False):
        self._by_hash = dict(principals)
        self._secret = secret
        self.open_access = open_access

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> KeyRing:
        if not isinstance(spec, Mapping):
            raise ValueError("the keys spec must be a mapping with 'clients' and/or 'admin'")
        unknown = sorted(set(spec) - {"clients", "admin", "secret"})
        if unknown:
            raise ValueError(f"unknown section(s) {unknown} in the keys spec; expected clients, admin, secret")
        principals: dict[str, Principal] = {}

        def add(key: Any, p: Principal) -> None:
            if not isinstance(key, str) or len(key) < MIN_KEY_LEN:
                raise ValueError(f"the {p.role} key of {p.client!r} must be a string of at least {MIN_KEY_LEN} characters")
            h = _h(key)
            if h in principals:
                raise ValueError(f"the {p.role} key of {p.client!r} is used twice; every key must be distinct")
            principals[h] = p

        clients = spec.get("clients") or {}
        if not isinstance(clients, Mapping):
            raise ValueError("'clients' must map a client name to {ask: KEY, feedback: KEY}")
        for name, keys in clients.items():
            if not isinstance(keys, Mapping) or not set(keys) <= {"ask", "feedback"}:
                raise ValueError(f"client {name!r}: give {{ask: KEY, feedback: KEY}}")
            for role in ("ask", "feedback"):
                for key in _as_list(keys.get(role)):
                    add(key, Principal(str(name), role))
        for key in _as_list(spec.get("admin")):
            add(key, Principal("admin", "admin"))
        if not principals:
            raise ValueError("the keys spec defines no key")
        secret = spec.get("secret")
        secret_b = (secret.encode() if isinstance(secret, str) and secret
                    else hashlib.sha256(("autorag-hp:" + "|".join(sorted(principals))).encode()).digest())
        return cls(principals, secret_b)

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeyRing:
        """From ``path`` (JSON/YAML), else ``$AUTORAG_HP_KEYS`` (JSON text or a path)."""
        text = None
        if path is None:
            env = os.environ.get("AUTORAG_HP_KEYS")
            if not env:
                raise ValueError("no API keys: pass --keys FILE or set AUTORAG_HP_KEYS (or use --generate-keys)")
            path_candidate = Path(env)
            text = path_candidate.read_text() if not env.lstrip().startswith("{") and path_candidate.is_file() else env
        else:
            p = Path(path)
            if not p.is_file():
                raise ValueError(f"keys file {str(p)!r} does not exist")
            text = p.read_text()
        try:
            spec = json.loads(text)
        except json.JSONDecodeError:
            import yaml

            spec = yaml.safe_load(text)
        return cls.from_mapping(spec)

    @classmethod
    def open(cls) -> KeyRing:
        """No authentication at all (local development only): everyone is admin."""
        return cls({}, secrets.token_bytes(32), open_access=True)

    @staticmethod
    def generate(clients: tuple[str, ...] = ("default",)) -> dict[str, Any]:
        """A fresh keys spec with random keys."""
        return {
            "clients": {c: {"ask": "ask-" + secrets.token_urlsafe(24), "feedback": "fb-" + secrets.token_urlsafe(24)}
                        for c in clients},
            "admin": ["admin-" + secrets.token_urlsafe(24)],
            "secret": secrets.token_urlsafe(32),
        }

    def lookup(self, key: str | None) -> Principal | None:
        if self.open_access:
            return Principal("admin", "admin")
        if not key:
            return None
        return self._by_hash.get(_h(key))

    # --- tickets -----------------------------------------------------------------------------------------
    def _sig(self, study: str, trial_id: str, client: str) -> str:
        msg = f"{study}\x00{trial_id}\x00{client}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:20]

    def ticket(self, study: str, trial_id: str, client: str) -> str:
        return f"{trial_id}.{self._sig(study, trial_id, client)}"

    def parse_ticket(self, study: str, ticket: str, client: str | None) -> str:
        """The trial id inside ``ticket``; raises TicketError if it was not issued to ``client``.

        ``client=None`` (an admin) accepts any well-formed ticket without checking the signature.
        """
        tid, dot, sig = ticket.partition(".")
        if not dot or not tid or not sig or not tid.isalnum() or not sig.isalnum():
            raise TicketError("malformed trial_id: expected the value /v1/ask returned, '<id>.<signature>'")
        if client is not None and not hmac.compare_digest(sig, self._sig(study, tid, client)):
            raise TicketError("this trial was not asked with your client's key (or its trial_id was altered)")
        return tid


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]
