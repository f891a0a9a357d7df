"""Importing an event log into a storage through its own public operations (so every invariant holds)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from autorag_hp.errors import DuplicateTrialError, InvalidEventLogError, UnknownTrialError
from autorag_hp.space import Config
from autorag_hp.storage.base import EXPIRE, REPORT, SUGGEST, Event, Storage, TrialRecord


def import_into(storage: Storage, study: str, events: Iterable[Event]) -> int:
    """Replay ``events`` into ``study``: suggestions create trials, reports report them, expiries expire them.

    Trials that already exist in the study are an error (importing the same log twice would double count).
    Events are validated before anything is written.
    """
    events = list(events)
    suggested: set[str] = set()
    for ev in events:
        if ev.kind == SUGGEST:
            if ev.trial_id in suggested:
                raise InvalidEventLogError(f"trial {ev.trial_id!r} is suggested twice in the imported log")
            suggested.add(ev.trial_id)
        elif ev.trial_id not in suggested:
            raise InvalidEventLogError(f"event {ev.seq} ({ev.kind}) refers to trial {ev.trial_id!r} before its suggestion")
        if ev.kind == REPORT and (ev.reward is None or not math.isfinite(ev.reward)):
            raise InvalidEventLogError(f"event {ev.seq}: report without a finite reward")
    for tid in suggested:
        try:
            storage.trial(study, tid)
        except UnknownTrialError:
            continue
        raise DuplicateTrialError(f"trial {tid!r} already exists in study {study!r}; the log was imported before")
    n = 0
    for ev in events:
        if ev.kind == SUGGEST:
            cfg = Config.from_json(ev.config)
            storage.suggest(study, TrialRecord(ev.trial_id, cfg.to_json(), cfg.id, ev.info, created_at=ev.time))
        elif ev.kind == REPORT:
            storage.report(study, ev.trial_id, float(ev.reward), ev.time)
        elif ev.kind == EXPIRE:
            storage.expire_trial(study, ev.trial_id, ev.time)
        n += 1
    return n
