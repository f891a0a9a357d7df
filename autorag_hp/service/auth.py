"""API keys, their scopes, and trial tickets.

Keys come from a JSON (or YAML) file or the ``AUTORAG_HP_KEYS`` environment variable::

    {
      "clients": {"web": {"ask": "ask-key-of-web", "feedback": "feedback-key-of-web",
                          "score": "optional: scoring key of web"}},
      "admin": ["admin-key"],
      "secret": "optional; signs trial tickets (default: derived from the keys)"
    }

Each key has one role, and the role gives its scopes:

* an **ask** key (scope ``ask``) may call ``POST /v1/ask`` without a reference answer;
* a **score** key (scopes ``ask`` and ``score``) may also send a ``reference``: the service then scores the
  answer itself and reports that reward at once. An ask key that sends a ``reference`` is **refused with 403**
  (nothing is asked or stored), rather than having its reference silently ignored: a client that believes it is
  grading the tuner learns at once that it is not;
* a **feedback** key (scope ``feedback``) may give feedback on the trials its own client asked (and read the
  statistics);
* an **admin** key has every scope, including feedback on any trial.

Every role may be one key or a list of keys (to rotate them). Files written before scopes existed keep their
meaning: ``ask`` and ``feedback`` keys give exactly the rights they gave, minus scoring by reference.

A client may not steer the tuner with another client's trials: ``/v1/ask`` returns a *ticket*
``<trial id>.<signature>`` where the signature (20 lowercase hex digits) is an HMAC of (study, trial id,
client); feedback checks it against the client of the feedback key. Replicas that share the keys file verify
each other's tickets.

>>> ring = KeyRing.from_mapping({"clients": {"web": {"ask": "a" * 16, "feedback": "f" * 16}}, "admin": ["x" * 16]})
>>> ring.lookup("a" * 16)
Principal(client='web', role='ask')
>>> ring.lookup("a" * 16).can("score"), ring.lookup("x" * 16).can("score")
(False, True)
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

#: The scopes a key can hold.
SCOPES = ("ask", "feedback", "score", "admin")
#: A key's role (its name in the keys file) → its scopes.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "ask": frozenset({"ask"}),
    "score": frozenset({"ask", "score"}),
    "feedback": frozenset({"feedback"}),
    "admin": frozenset(SCOPES),
}
ROLES = tuple(ROLE_SCOPES)
CLIENT_ROLES = ("ask", "feedback", "score")
MIN_KEY_LEN = 16
SIG_LEN = 20
_HEX = frozenset("0123456789abcdef")


class TicketError(ValueError):
    """A trial ticket is malformed, or was issued to another client."""


class MalformedTicketError(TicketError):
    """A trial ticket is not ``<ASCII alphanumeric id>.<20 lowercase hex digits>``."""


@dataclass(frozen=True)
class Principal:
    client: str
    role: str

    @property
    def scopes(self) -> frozenset[str]:
        return ROLE_SCOPES.get(self.role, frozenset())

    def can(self, scope: str) -> bool:
        """True when this key holds ``scope`` (an admin holds every scope)."""
        return scope in self.scopes


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
            raise ValueError("'clients' must map a client name to {ask: KEY, feedback: KEY, score: KEY}")
        for name, keys in clients.items():
            if not isinstance(keys, Mapping) or not set(keys) <= set(CLIENT_ROLES):
                raise ValueError(f"client {name!r}: give {{ask: KEY, feedback: KEY}} and optionally score: KEY")
            for role in CLIENT_ROLES:
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
    def generate(clients: tuple[str, ...] = ("default",), score: bool = True) -> dict[str, Any]:
        """A fresh keys spec with random keys: per client an ask and a feedback key, and a score key unless
        ``score=False``."""
        def client_keys() -> dict[str, str]:
            keys = {"ask": "ask-" + secrets.token_urlsafe(24), "feedback": "fb-" + secrets.token_urlsafe(24)}
            if score:
                keys["score"] = "score-" + secrets.token_urlsafe(24)
            return keys

        return {
            "clients": {c: client_keys() for c in clients},
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
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:SIG_LEN]

    def ticket(self, study: str, trial_id: str, client: str) -> str:
        return f"{trial_id}.{self._sig(study, trial_id, client)}"

    def parse_ticket(self, study: str, ticket: str, client: str | None) -> str:
        """The trial id inside ``ticket``; raises TicketError if it was not issued to ``client``
        (MalformedTicketError if it is not ``<ASCII alphanumeric id>.<20 lowercase hex digits>``).

        ``client=None`` (an admin) accepts any well-formed ticket without checking the signature.
        """
        tid, dot, sig = ticket.partition(".")
        if (not dot or not tid or not tid.isascii() or not tid.isalnum()
                or len(sig) != SIG_LEN or not _HEX.issuperset(sig)):
            raise MalformedTicketError("malformed trial_id: expected the value /v1/ask returned, '<id>.<signature>'")
        if client is not None and not hmac.compare_digest(sig.encode("ascii"), self._sig(study, tid, client).encode()):
            raise TicketError("this trial was not asked with your client's key (or its trial_id was altered)")
        return tid


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return list(v) if isinstance(v, list | tuple) else [v]
