"""Checked field access for a venue's JSON (every venue's parsers): each
helper names the event and field in the `VenueProtocolError` it raises, so a malformed
message says what was wrong with it."""

from __future__ import annotations

import math

import numpy as np
import orjson

from connector.errors import UsageError, VenueProtocolError
from connector.levels import checked_levels

_MISSING = object()
_TYPE_NAMES = {int: "integer", str: "string", bool: "boolean", list: "array", dict: "object"}


def _bad(ev: str, key: str, want: str, v: object) -> VenueProtocolError:
    if v is _MISSING:
        return VenueProtocolError(f"{ev}: missing field {key!r}")
    return VenueProtocolError(f"{ev}: field {key!r} must be {want}, got {v!r:.60}")


def _get(m: dict, key: str, typ: type, ev: str):
    v = m.get(key, _MISSING)
    if type(v) is typ:  # exact: bool is not accepted as int
        return v
    raise _bad(ev, key, _TYPE_NAMES[typ], v)


def _ns(m: dict, key: str, ev: str) -> int:
    return _get(m, key, int, ev) * 1_000_000


def _dec(m: dict, key: str, ev: str) -> float:
    """A decimal sent as a JSON string; must be finite."""
    v = m.get(key, _MISSING)
    if type(v) is str:
        try:
            x = float(v)
        except ValueError:
            pass
        else:
            if math.isfinite(x):
                return x
    raise _bad(ev, key, "a decimal string", v)


def _bool(m: dict, key: str, ev: str) -> bool:
    return _get(m, key, bool, ev)


def _opt(fn, m: dict, key: str, ev: str):
    return None if m.get(key) is None else fn(m, key, ev)


def _opt_str(m: dict, key: str, ev: str) -> str | None:
    return None if m.get(key) is None else _get(m, key, str, ev)


def _int_or_str(m: dict, key: str, ev: str) -> int:
    """An integer that some venue versions send as a string (listenKeyExpired.E, er)."""
    v = m.get(key, _MISSING)
    if type(v) is int:
        return v
    if type(v) is str and v.isascii() and v.isdigit():
        return int(v)
    raise _bad(ev, key, "an integer or a digit string", v)


def _as_bytes(raw: bytes | str) -> bytes:
    if type(raw) is bytes:
        return raw
    if type(raw) is str:
        try:
            return raw.encode()
        except UnicodeEncodeError:  # lone surrogates
            raise VenueProtocolError("frame is not valid UTF-8 text") from None
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    raise UsageError(f"expected a text or bytes frame, got {type(raw).__name__}")


def _loads(raw: bytes | str) -> dict:
    try:
        m = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise VenueProtocolError(f"malformed JSON: {e}") from None
    if type(m) is not dict:
        raise VenueProtocolError(f"expected a JSON object, got {type(m).__name__}")
    return m


def _levels(m: dict, key: str, ev: str) -> np.ndarray:
    return checked_levels(_get(m, key, list, ev), key, ev)


def _enum(m: dict, key: str, allowed: frozenset, ev: str) -> str:
    v = _get(m, key, str, ev)
    if v not in allowed:
        raise VenueProtocolError(f"{ev}: field {key!r} has unknown value {v!r}")
    return v


def _array(raw: bytes | str | list, what: str) -> list:
    if type(raw) is list:
        m = raw
    else:
        try:
            m = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise VenueProtocolError(f"{what}: malformed JSON: {e}") from None
    if type(m) is not list or not all(type(x) is dict for x in m):
        raise VenueProtocolError(f"{what}: expected an array of objects, got {str(m)[:80]}")
    return m
