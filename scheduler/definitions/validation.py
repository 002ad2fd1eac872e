"""Pydantic validation errors turned into ``file:line:col: error: ...`` lines a user can act on.

Pydantic knows what is wrong and where in the data (``loc``); the YAML document knows where that
data sits in the file. This module joins the two and rewrites pydantic's wording into ours
("unknown key 'scirpt' in step 'prep'", hint "did you mean 'script'?").
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from scheduler.core.errors import DefinitionError
from scheduler.definitions.yamlsource import PathKey, YamlDocument

M = TypeVar("M", bound=BaseModel)

# A describer splits a path into the thing users know it as ("step 'prep'") and the field path
# inside that thing (("environment", "python")).
Describer = Callable[[PathKey], tuple[str, PathKey]]


def user_error(message: str, hint: str | None = None) -> PydanticCustomError:
    """A validator error that keeps our wording and a hint through pydantic."""
    return PydanticCustomError(
        "pipesched", message.replace("{", "{{").replace("}", "}}"), {"hint": hint}
    )


def did_you_mean(word: object, choices: Iterable[str], *, label: str = "allowed") -> str | None:
    """``did you mean 'x'?`` when a choice is close, else the list of choices."""
    options = sorted({str(c) for c in choices})
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if options:
        return f"{label}: {', '.join(options)}"
    return None


def declared(names: Iterable[str]) -> str:
    """``declared: a, b`` or ``none declared``, for messages about unknown names."""
    names = sorted(names)
    return f"declared: {', '.join(names)}" if names else "none declared"


def field_label(path: PathKey) -> str:
    """``environment.variables.FOO`` or ``arguments[2]``: a field path as users write it."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def render_value(value: object) -> str:
    """A short YAML-ish rendering of a bad value for ``(got ...)``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(
    model: type[M],
    raw: Any,
    doc: YamlDocument,
    base: PathKey,
    describe: Describer,
    errors: list[DefinitionError],
    *,
    context: dict[str, Any] | None = None,
) -> M | None:
    """Validate ``raw`` (found at ``base`` in ``doc``) as ``model``; on failure add errors and
    return None."""
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        for err in exc.errors():
            errors.append(convert(err, model, doc, base, describe))
        return None


def convert(
    err: ErrorDetails, model: type[BaseModel], doc: YamlDocument, base: PathKey, describe: Describer
) -> DefinitionError:
    """One pydantic error dict as a DefinitionError at the right node."""
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        return _bad_value(err, loc, doc, base, describe, key=True)
    if kind in ("extra_forbidden", "invalid_key"):
        parent, key = loc[:-1], loc[-1]
        allowed = allowed_keys(model, parent)
        hint = did_you_mean(key, allowed) if allowed is not None else None
        return doc.error(
            (*base, *loc),
            f"unknown key '{key}' in {_where(describe, (*base, *parent))}",
            hint=hint,
            key=True,
        )
    if kind == "missing":
        parent, key = loc[:-1], loc[-1]
        return doc.error(
            (*base, *parent),
            f"missing required field '{key}' in {_where(describe, (*base, *parent))}",
            key=True,
        )
    return _bad_value(err, loc, doc, base, describe, key=False, hint=ctx.get("hint"))


def _bad_value(
    err: ErrorDetails,
    loc: PathKey,
    doc: YamlDocument,
    base: PathKey,
    describe: Describer,
    *,
    key: bool,
    hint: str | None = None,
) -> DefinitionError:
    kind = err["type"]
    owner, rest = describe((*base, *loc))
    subject = f"'{field_label(rest)}' in {owner}" if rest else owner
    if key:
        subject = f"key '{loc[-1]}' in {_where(describe, (*base, *loc[:-1]))}"
    text = _wording(err)
    if kind == "literal_error" and hint is None:
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = difflib.get_close_matches(str(err["input"]), expected, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else None
    if kind not in ("pipesched", "value_error", "assertion_error"):
        text += f" (got {render_value(err['input'])})"
    sep = " " if text.startswith("must ") else ": "
    return doc.error((*base, *loc), f"{subject}{sep}{text}", hint=hint, key=key)


_WORDING = {
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "none_required": "must be null",
}


def _wording(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in _WORDING:
        return _WORDING[kind]
    ctx = err.get("ctx") or {}
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"must have at least {n} item{'s' if n != 1 else ''}"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if kind == "pipesched":
        return msg
    if msg.startswith("Input should be "):
        return "must be " + msg[len("Input should be ") :]
    return msg[:1].lower() + msg[1:]


def _where(describe: Describer, path: PathKey) -> str:
    owner, rest = describe(path)
    return f"'{field_label(rest)}' of {owner}" if rest else owner


def allowed_keys(model: Any, path: Sequence[Any]) -> list[str] | None:
    """The keys the model accepts at ``path`` (for did-you-mean), or None when not a model."""
    tp: Any = model
    for part in path:
        tp = _step_into(tp, part)
        if tp is None:
            return None
    found = _as_model(tp)
    if found is None:
        return None
    hidden = getattr(found, "HIDDEN_KEYS", ())
    return [name for name in found.model_fields if name not in hidden]


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of an Optional/Union/Annotated type."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            out.extend(_unwrap(arg))
        return out
    return [tp]


def _as_model(tp: Any) -> type[BaseModel] | None:
    for alt in _unwrap(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            return alt
    return None


def _step_into(tp: Any, part: Any) -> Any:
    for alt in _unwrap(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            field = alt.model_fields.get(part) if isinstance(part, str) else None
            if field is not None:
                return field.annotation
            continue
        origin = typing.get_origin(alt)
        args = typing.get_args(alt)
        if origin is dict and len(args) == 2:
            return args[1]
        if origin is list and args and isinstance(part, int):
            return args[0]
    return None
