"""The fake GitHub's GraphQL `repository { object(expression:) }`: file texts and directory listings at a ref.

Where each behaviour comes from (GitHub GraphQL reference, docs.github.com/graphql/reference):

- `Repository.object(expression: String)`: "A Git object in the repository"; the expression is a revision
  expression such as `<sha>:<path>` ("suitable for rev-parse"). Nothing at that path: `null`.
- A `Blob` has `text` ("UTF8 text data or null if the Blob is binary"), `isBinary`, `isTruncated`, `byteSize`,
  `oid`. GitHub truncates `text` of very large blobs and sets `isTruncated` (known behaviour; the limit here is
  `MAX_BLOB_TEXT` bytes, a knob on the fake).
- A `Tree` has `entries`, each with `name`, `type` (`blob` or `tree`), `path`.
- Inline fragments select by type: an object whose type matches no fragment is answered `{}` (GraphQL spec,
  "Inline Fragments"); fields are answered only when selected.
- A repository the token cannot see is `null` with a `NOT_FOUND` error (known behaviour: GitHub hides it).

The query is parsed with graphql-core, so only well-formed GraphQL is answered; anything this fake does not know
is an error, never a silent empty answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    StringValueNode,
    VariableNode,
    parse,
)
from graphql.error import GraphQLSyntaxError

MAX_BLOB_TEXT = 512 * 1024

Files = Mapping[tuple[str, str, str, str], bytes]


class QueryError(Exception):
    """A query this fake cannot answer (the message becomes the GraphQL error)."""


def _value(node: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        name = node.name.value
        if name not in variables:
            raise QueryError(f"Variable ${name} of type String! was provided invalid value")
        return variables[name]
    if isinstance(node, StringValueNode):
        return node.value
    raise QueryError("this fake accepts string arguments only")


def _args(field: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    return {arg.name.value: _value(arg.value, variables) for arg in field.arguments or ()}


def _blob(data: bytes, selected: set[str], max_text: int) -> dict[str, Any]:
    binary = b"\x00" in data[:8000]
    try:
        text: str | None = None if binary else data[:max_text].decode("utf-8")
    except UnicodeDecodeError:
        binary, text = True, None
    values = {
        "text": text, "isBinary": binary, "isTruncated": not binary and len(data) > max_text,
        "byteSize": len(data), "oid": hashlib.sha1(data).hexdigest(), "__typename": "Blob",
    }
    return {name: values[name] for name in selected if name in values}


def _tree(files: Files, owner: str, repo: str, ref: str, folder: str) -> list[dict[str, str]] | None:
    prefix = f"{folder}/" if folder else ""
    children: dict[str, str] = {}
    for (o, r, f_ref, path) in files:
        if (o, r, f_ref) != (owner, repo, ref) or not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        name, _, deeper = rest.partition("/")
        children[name] = "tree" if deeper else "blob"
    if not children:
        return None
    return [{"name": n, "type": t, "path": prefix + n} for n, t in sorted(children.items())]


def _fragment_fields(field: FieldNode, type_name: str) -> set[str] | None:
    """The fields selected on `type_name` (None when no fragment selects that type)."""
    found: set[str] | None = None
    for sel in field.selection_set.selections if field.selection_set else ():
        if isinstance(sel, InlineFragmentNode) and sel.type_condition and sel.type_condition.name.value == type_name:
            found = (found or set()) | {s.name.value for s in sel.selection_set.selections if isinstance(s, FieldNode)}
        elif isinstance(sel, FieldNode):
            found = (found or set()) | {sel.name.value}
    return found


def _entry_fields(field: FieldNode) -> set[str]:
    for sel in field.selection_set.selections if field.selection_set else ():
        if isinstance(sel, InlineFragmentNode) and sel.type_condition and sel.type_condition.name.value == "Tree":
            for inner in sel.selection_set.selections:
                if isinstance(inner, FieldNode) and inner.name.value == "entries" and inner.selection_set:
                    return {s.name.value for s in inner.selection_set.selections if isinstance(s, FieldNode)}
    return set()


def _object(field: FieldNode, variables: Mapping[str, Any], files: Files, owner: str, repo: str,
            max_text: int) -> dict[str, Any] | None:
    expression = str(_args(field, variables).get("expression") or "")
    ref, sep, path = expression.partition(":")
    if not sep or not ref:
        raise QueryError(f"this fake resolves `<rev>:<path>` expressions only, got {expression!r}")
    path = path.strip("/")
    data = files.get((owner, repo, ref, path))
    if data is not None:
        selected = _fragment_fields(field, "Blob")
        return {} if selected is None else _blob(data, selected, max_text)
    entries = _tree(files, owner, repo, ref, path)
    if entries is None:
        return None
    selected = _fragment_fields(field, "Tree")
    if selected is None:
        return {}
    wanted = _entry_fields(field)
    out: dict[str, Any] = {}
    if "entries" in selected:
        out["entries"] = [{k: v for k, v in e.items() if k in wanted} for e in entries]
    return out


def answer_repository_objects(
    query: str, variables: Mapping[str, Any], files: Files, visible: set[tuple[str, str]],
    max_text: int = MAX_BLOB_TEXT,
) -> dict[str, Any]:
    """The GraphQL response body for a query of `repository { <alias>: object(expression:) {...} }` fields."""
    try:
        document = parse(query)
    except GraphQLSyntaxError as exc:
        return {"errors": [{"message": f"Parse error: {exc.message}"}]}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        return {"errors": [{"message": "this fake answers exactly one query operation"}]}
    try:
        result: dict[str, Any] = {}
        for top in operations[0].selection_set.selections:
            if not isinstance(top, FieldNode) or top.name.value != "repository":
                raise QueryError("this fake answers `repository` only")
            args = _args(top, variables)
            owner, repo = str(args.get("owner")), str(args.get("name"))
            key = top.alias.value if top.alias else "repository"
            if (owner, repo) not in visible:
                return {"data": {key: None}, "errors": [{"type": "NOT_FOUND", "path": [key],
                                                          "message": f"Could not resolve to a Repository with the "
                                                                     f"name '{owner}/{repo}'."}]}
            fields: dict[str, Any] = {}
            for sel in top.selection_set.selections if top.selection_set else ():
                if not isinstance(sel, FieldNode) or sel.name.value != "object":
                    raise QueryError("this fake answers `object(expression:)` fields of `repository` only")
                alias = sel.alias.value if sel.alias else "object"
                fields[alias] = _object(sel, variables, files, owner, repo, max_text)
            result[key] = fields
        return {"data": result}
    except QueryError as exc:
        return {"errors": [{"message": str(exc)}]}
