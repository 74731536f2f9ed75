"""Redis adapter of StateStore (several bot replicas): the ``redis`` client.

Claims are ``SET key 1 NX PX ttl`` (atomic: one replica wins, the claim of a
process that died expires by itself); ``finish`` overwrites with a longer expiry.
Thread memory is a list per thread (RPUSH + LTRIM + EXPIRE in one MULTI), a round a
key read and removed by GETDEL, so only one replica grades an answer.
"""

from __future__ import annotations

import json

from .base import StateError, StateStore

THREAD_TTL_S = 7 * 86_400  # thread memory outlives a week-long conversation, then goes


class RedisState(StateStore):
    def __init__(self, url: str, max_turns: int = 12, max_chars: int = 1500, prefix: str = "coach:",
                 timeout: float = 2.0, where: str = ""):
        import redis

        self._errors = (redis.exceptions.RedisError, OSError)
        self.max_turns, self.max_chars, self.prefix = max_turns, max_chars, prefix
        self.where = where or url
        self.r = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._call(self.r.ping)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._errors as err:
            raise StateError(f"Redis at {self.where} failed ({type(err).__name__}: {err}); check that it runs "
                             "and COACH_STATE_URL") from None

    def claim(self, key, ttl):
        return bool(self._call(self.r.set, self.prefix + key, "1", nx=True, px=max(1, int(ttl * 1000))))

    def finish(self, key, ttl):
        self._call(self.r.set, self.prefix + key, "done", px=max(1, int(ttl * 1000)))

    def release(self, key):
        self._call(self.r.delete, self.prefix + key)

    def history(self, thread):
        raw = self._call(self.r.lrange, self.prefix + "thread:" + thread, -self.max_turns, -1)
        return [tuple(json.loads(x)) for x in raw]

    def remember(self, thread, role, text):
        key = self.prefix + "thread:" + thread
        pipe = self.r.pipeline(transaction=True)
        pipe.rpush(key, json.dumps([role, text[: self.max_chars]], ensure_ascii=False))
        pipe.ltrim(key, -self.max_turns, -1)
        pipe.expire(key, THREAD_TTL_S)
        self._call(pipe.execute)

    def open_round(self, key, section_id, ttl):
        self._call(self.r.set, self.prefix + "round:" + key, section_id, px=max(1, int(ttl * 1000)))

    def take_round(self, key):
        value = self._call(self.r.getdel, self.prefix + "round:" + key)
        return value.decode() if value is not None else None

    def close(self):
        self.r.close()
