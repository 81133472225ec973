"""Escalation policy files: read `<plan-slug>.yaml` files and explain every mistake in them.

A strict check when the notifier starts turns a typo into a refusal that names the file, the
line, the key and the fix (`PolicyError`, one line per problem); all files are checked before
anything is refused, so one start shows all the mistakes. The schema itself is
`notifier.domain.policy`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from notifier.domain.policy import RULE_ERROR, EscalationPolicy, PolicySet

DEFAULT_FILE = "default.yaml"


class PolicyError(Exception):
    """Policy files that cannot be used: one line per problem, each naming the file and the fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_README = "data/escalation/README.md"


def load_policies(folder: Path) -> PolicySet:
    """Read and check every `*.yaml` of `folder`; raise one PolicyError listing every problem.

    All files are checked before anything is refused, so one start shows all the mistakes.
    """
    if not folder.is_dir():
        raise PolicyError(
            [f"{folder}: no such folder; create it with a {DEFAULT_FILE} (see {_README})"]
        )
    problems: list[str] = [
        f"{path}: ignored because policy files end in .yaml; rename it to {path.stem}.yaml"
        for path in sorted(folder.glob("*.yml"))
    ]
    policies: dict[str, EscalationPolicy] = {}
    for path in sorted(folder.glob("*.yaml")):
        if not _SLUG.fullmatch(path.stem):
            problems.append(
                f"{path}: the file name must be a plan slug (lower-case letters, digits and "
                "'-', e.g. zhaoqing-digital-2024.yaml); rename it"
            )
            continue
        policy, found = _load_file(path)
        problems += found
        if policy is not None:
            policies[path.stem] = policy
    if not (folder / DEFAULT_FILE).is_file():
        problems.append(
            f"{folder / DEFAULT_FILE}: missing; every plan without its own file uses it, so "
            f"add it (see {_README})"
        )
    if problems:
        raise PolicyError(problems)
    default = policies.pop(DEFAULT_FILE.removesuffix(".yaml"))
    return PolicySet(default=default, plans=policies)


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping that names a key twice (YAML would silently keep the last)."""


class _Loader(yaml.SafeLoader):
    """YAML with the surprises that matter here removed.

    YAML 1.1 reads an unquoted 9:00 as the number 540 and `no`/`on` as booleans; here only
    decimal numbers and true/false are typed, as in YAML 1.2, so `start: 9:00` means nine
    o'clock. A key given twice is an error instead of the last one silently winning.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_seen: dict[str, yaml.Mark] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                key = str(key_node.value)
                if key in first_seen:
                    raise _DuplicateKey(
                        problem=f"the key {key!r} is given twice (first on line "
                        f"{first_seen[key].line + 1}); keep one of them",
                        problem_mark=key_node.start_mark,
                    )
                first_seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


_MERGE = "tag:yaml.org,2002:merge"
_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF")
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), "-+0123456789")
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    "-+0123456789.",
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    # Decimal only: YAML 1.1 would read 08 as a broken octal number.
    return int(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor(_INT, _construct_decimal)


def _load_file(path: Path) -> tuple[EscalationPolicy | None, list[str]]:
    """One file's policy, or the problems that keep it from being one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot be read ({exc}); save it as UTF-8 text"]
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        if isinstance(exc, _DuplicateKey):
            return None, [f"{where}: {exc.problem}"]
        context = f" ({exc.context})" if exc.context else ""
        return None, [
            f"{where}: not valid YAML: {exc.problem}{context}; fix the syntax (see {_README})"
        ]
    except yaml.YAMLError as exc:
        flat = " ".join(str(exc).split())
        return None, [f"{path}: not valid YAML: {flat}; fix the syntax (see {_README})"]
    finally:
        loader.dispose()
    if node is None:
        return None, [f"{path}: the file is empty; write a policy in it (see {_README})"]
    try:
        return EscalationPolicy.model_validate(data), []
    except ValidationError as exc:
        errors = exc.errors()
    return None, [_describe(path, node, e) for e in errors if not _follows_from(e, errors)]


def _follows_from(error: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """Whether the error only repeats others: a list is "too short" when its items failed."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors
    )


def _describe(path: Path, root: yaml.Node, error: ErrorDetails) -> str:
    """`file:line: location: what is wrong and what to do`, for one validation error."""
    # A defaulted field's error carries its Python name; the file spells it as the alias.
    loc: tuple[int | str, ...] = tuple(_ALIASES.get(p, p) for p in error["loc"])
    at = (error.get("ctx") or {}).get("at") if error["type"] == RULE_ERROR else None
    if at is not None:
        loc += at if isinstance(at, tuple) else (at,)
    return f"{path}:{_line_of(root, loc)}: {_format_loc(loc)}: {_explain(error, loc)}"


_ALIASES: dict[int | str, int | str] = {"while_": "while"}


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node of `loc` present in the file (the parent for a missing key)."""
    node, line = root, root.start_mark.line
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line, child = key.start_mark.line, value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line
        if child is None:
            break
        node = child
    return line + 1


_HINTS = {
    "id": "a name of lower-case letters, digits and '-', e.g. lead-again",
    "notify": "lead, co or coordinating_office",
    "steps": "a list of steps",
}


def _explain(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind, ctx, found = error["type"], error.get("ctx") or {}, error.get("input")
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == RULE_ERROR:
        return error["msg"]
    if kind == "missing":
        hint = _HINTS.get(name)
        return f"required; add `{name}:`" + (f" ({hint})" if hint else "") + f", see {_README}"
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return "unknown key; remove it or correct its spelling" + (
            f" (known keys: {', '.join(known)})" if known else ""
        )
    if kind == "enum":
        return f"{found!r} is not allowed; use one of {ctx.get('expected')}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected keys and values (`key: value` lines), found {_kind(found)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, e.g. [a, b] or `- item` lines, found {_kind(found)}"
    if kind == "too_short":
        return "needs at least one step, e.g. `- {id: lead, notify: lead}`"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge'):g} or more, found {found!r}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le'):g}, found {found!r}"
    if kind == "string_pattern_mismatch":
        return f"{found!r}: use lower-case letters, digits and '-' only, e.g. lead-again"
    if kind == "string_too_long":
        return f"{found!r} is too long; use at most {ctx.get('max_length')} characters"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number, found {_kind(found)} {found!r}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, found {_kind(found)} {found!r}"
    if kind == "finite_number":
        return f"must be a finite number, found {found!r}"
    if kind == "string_type":
        return f"must be text, found {_kind(found)} {found!r}; put it in quotes"
    return f"{error['msg']} (found {found!r})"


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "keys and values"
    return type(value).__name__


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `parent` accepts (for 'unknown key' messages)."""
    model: type[BaseModel] | None = EscalationPolicy
    for part in parent:
        if model is None:
            return []
        if isinstance(part, str):
            field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
            model = _model_in(field.annotation) if field else None
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if found := _model_in(arg):
            return found
    return None
