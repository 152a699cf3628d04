"""Strict dataclass <-> JSON conversion shared by every config and spec.

Unknown keys are errors, types are checked, and every error names the dotted field path,
so that a user who mistypes ``"lr"`` as ``"learning_rate"`` is told exactly that.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError


# A config is a few levels deep (a residual inside an ensemble inside a list of blocks is 6);
# deeper JSON is refused before anything walks it, so that no parser or builder recurses past
# Python's stack (JSON nested 1,000 levels deep gave a RecursionError traceback).
MAX_JSON_DEPTH = 64
# Whole numbers are stored in HDF5 as int64 and handed to numpy: larger ones are refused here.
MAX_WHOLE_NUMBER = 2**63 - 1


def parse_json(text: str, what: str = "config") -> Any:
    """``json.loads`` for user text: a UTF-8 byte order mark is accepted (as in CSV files), and
    text that is not JSON, nested deeper than MAX_JSON_DEPTH or holds a number Python will not
    read (over 4,300 digits) raises ConfigError naming ``what``."""
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ConfigError(f"{what}: the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if level > MAX_JSON_DEPTH:
            raise ConfigError(f"{what}: the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return data


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int) and abs(value) > MAX_WHOLE_NUMBER:
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert a JSON value to type ``tp``, raising ConfigError that names ``path``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: must be one of {', '.join(map(repr, choices))}, got {describe(value)}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {describe(value)} fits none of the allowed forms")
    if tp is list:
        tp, origin = list[Any], list
    if tp is dict:
        tp, origin = dict[str, Any], dict
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {describe(value)}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        return [convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object, got {describe(value)}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if hasattr(tp, "from_dict"):
            return tp.from_dict(value, path)
        return from_dict(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                raise ConfigError(f"{path}: expected a whole number, got {describe(value)}")
            value = int(value)
        if abs(value) > MAX_WHOLE_NUMBER:
            raise ConfigError(f"{path}: {describe(value)} is too large (at most 2^63 - 1)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {describe(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            raise ConfigError(f"{path}: {describe(value)} is too large for a float64") from None
        if not math.isfinite(number):
            raise ConfigError(f"{path}: must be a finite number, got {value!r}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {describe(value)}")
        return value
    raise TypeError(f"schema: unsupported type {tp!r} at {path}")


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from a dict: unknown keys and missing required fields are errors."""
    where = path or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {describe(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{_join(path, unknown[0])}: unknown key (allowed: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, field in fields.items():
        sub = _join(path, name)
        if name in data:
            kwargs[name] = convert(hints[name], data[name], sub)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: missing required field")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def to_dict(obj: Any) -> Any:
    """The JSON-ready form of a dataclass tree (lists, dicts, numbers, strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return obj.to_dict()
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def require(condition: bool, path: str, message: str) -> None:
    """Raise ConfigError(path: message) unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{path}: {message}")


class Serializable:
    """Mixin: ``Cls.from_dict(data)`` and ``obj.to_dict()`` with strict validation."""

    @classmethod
    def from_dict(cls, data: Any, path: str = ""):
        return from_dict(cls, data, path)

    def to_dict(self) -> dict:
        return {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(self)}

