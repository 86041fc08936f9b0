"""The fake GitHub's GraphQL endpoint: review threads (with their comments and reactions) and `resolveReviewThread`.

Where each behaviour comes from (GitHub GraphQL reference, docs.github.com/graphql/reference):

- `Repository.pullRequest(number: Int!)`: the pull request, or `null` with a `NOT_FOUND` error when there is none
  ("Could not resolve to a PullRequest with the number of N.", known behaviour).
- `PullRequest.reviewThreads(first:, after:)`: a connection of `PullRequestReviewThread` (objects/
  pullrequestreviewthread): `id` (node id, `PRRT_...`), `isResolved`, `isOutdated`, `viewerCanResolve`, `path`,
  `line`, `comments(first:)` (objects/pullrequestreviewcommentconnection). Connections require `first` or `last`
  ("You must provide a `first` or `last` value to properly paginate the `X` connection.") and allow at most 100
  ("Requesting N records on the `X` connection exceeds the `first` limit of 100 records."), with `nodes`,
  `totalCount` and `pageInfo { hasNextPage endCursor }` (guides/using-pagination-in-the-graphql-api).
- `PullRequestReviewComment`: `id`, `databaseId` (the REST id), `body`, `author { login }`, `createdAt`,
  `replyTo { databaseId }`, and, being `Reactable`, `reactions(content: ReactionContent, first:)`: a
  `ReactionConnection` of `Reaction { content user { login } createdAt }` (objects/reaction; `user` is nullable).
  `ReactionContent` is THUMBS_UP, THUMBS_DOWN, LAUGH, HOORAY, CONFUSED, HEART, ROCKET, EYES (enums/
  reactioncontent), the REST `+1`, `-1`, ... A bot's `author.login` is the App's slug without `[bot]` (known
  behaviour of the `Bot` actor in GraphQL).
- `resolveReviewThread(input: {threadId: ID!})` (mutations/resolvereviewthread) returns `{ thread }`. Errors come
  back with HTTP 200 and `data.resolveReviewThread: null`: an unknown id is `NOT_FOUND` ("Could not resolve to a
  node with the global id of 'X'"); a token without pull requests write, or a viewer that cannot resolve, is
  `FORBIDDEN` "Resource not accessible by integration" with `extensions.saml_failure` (as GitHub answers an App
  lacking a permission, e.g. fpicalausa/remove-stale-branches issue 49).
- A field the schema does not have is an error "Field 'x' doesn't exist on type 'Y'" (GitHub's `undefinedField`).

Queries are parsed with graphql-core; selections are answered field by field, so a query gets exactly what it
selects. `repository { object(expression:) }` reads are answered by `tests/fakes/github_objects.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    StringValueNode,
    VariableNode,
    parse,
)
from graphql.error import GraphQLSyntaxError

REACTION_ENUM = {"+1": "THUMBS_UP", "-1": "THUMBS_DOWN", "laugh": "LAUGH", "hooray": "HOORAY",
                 "confused": "CONFUSED", "heart": "HEART", "rocket": "ROCKET", "eyes": "EYES"}
MAX_PAGE = 100


class QueryError(Exception):
    """An error GitHub reports in `errors` (with its `type` when it has one)."""

    def __init__(self, message: str, kind: str | None = None, path: list[Any] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path or []


def _value(node: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        if node.name.value not in variables:
            raise QueryError(f"Variable ${node.name.value} was provided invalid value")
        return variables[node.name.value]
    if isinstance(node, (StringValueNode, EnumValueNode)):
        return node.value
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, ObjectValueNode):
        return {f.name.value: _value(f.value, variables) for f in node.fields}
    if isinstance(node, ListValueNode):
        return [_value(v, variables) for v in node.values]
    raise QueryError(f"this fake does not accept the argument {node!r}")


def _args(field: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    return {a.name.value: _value(a.value, variables) for a in field.arguments or ()}


# An object is (type name, {field name: resolver(args) -> value}); values are scalars, objects or lists of them.
Obj = tuple[str, Mapping[str, Callable[[dict[str, Any]], Any]]]


def _select(value: Any, field: FieldNode, variables: Mapping[str, Any], path: list[Any]) -> Any:
    """The JSON of `value` for `field`'s selection set."""
    if isinstance(value, list):
        return [_select(v, field, variables, [*path, i]) for i, v in enumerate(value)]
    if not isinstance(value, tuple):
        return value
    type_name, fields = value
    out: dict[str, Any] = {}
    for sel in field.selection_set.selections if field.selection_set else ():
        if not isinstance(sel, FieldNode):
            raise QueryError("this fake answers plain field selections only (no fragments here)")
        name = sel.name.value
        key = sel.alias.value if sel.alias else name
        if name == "__typename":
            out[key] = type_name
            continue
        if name not in fields:
            raise QueryError(f"Field '{name}' doesn't exist on type '{type_name}'", "undefinedField", [*path, key])
        out[key] = _select(fields[name](_args(sel, variables)), sel, variables, [*path, key])
    return out


def _connection(name: str, items: list[Any], args: dict[str, Any]) -> Obj:
    """A connection page (`first` required, at most 100; `after` is the index cursor of the previous page)."""
    first = args.get("first")
    if first is None:
        raise QueryError(f"You must provide a `first` or `last` value to properly paginate the `{name}` connection.")
    if int(first) > MAX_PAGE:
        raise QueryError(f"Requesting {first} records on the `{name}` connection exceeds the `first` limit of "
                         f"{MAX_PAGE} records.")
    start = int(args["after"]) if args.get("after") else 0
    page = items[start:start + int(first)]
    end = start + len(page)
    info: Obj = ("PageInfo", {"hasNextPage": lambda a: end < len(items),
                              "endCursor": lambda a: str(end) if page else None})
    return (f"{name[0].upper()}{name[1:]}Connection",
            {"nodes": lambda a: page, "totalCount": lambda a: len(items), "pageInfo": lambda a: info})


class ThreadsGraph:
    """The objects of one request, read from the fake's state (`fake` is the FakeGitHub)."""

    def __init__(self, fake: Any, token: Any) -> None:
        self.fake = fake
        self.token = token

    def _actor(self, user: Mapping[str, Any] | None) -> Obj | None:
        if user is None:
            return None
        login = str(user["login"])
        return ("Bot" if user.get("type") == "Bot" else "User", {"login": lambda a: login.removesuffix("[bot]")})

    def _reaction(self, reaction: Mapping[str, Any]) -> Obj:
        return ("Reaction", {"content": lambda a: REACTION_ENUM[reaction["content"]],
                             "user": lambda a: self._actor(reaction["user"]),
                             "createdAt": lambda a: reaction["created_at"]})

    def _reactions(self, comment_id: int, args: dict[str, Any]) -> Obj:
        wanted = args.get("content")
        if wanted is not None and wanted not in REACTION_ENUM.values():
            raise QueryError(f"Argument 'content' on Field 'reactions' has an invalid value ({wanted}).")
        found = [self._reaction(r) for r in self.fake.reactions.values()
                 if r["_on"] == ("review", comment_id) and (wanted is None or REACTION_ENUM[r["content"]] == wanted)]
        return _connection("reactions", found, args)

    def _comment(self, c: Mapping[str, Any]) -> Obj:
        reply_to = c["in_reply_to_id"]
        return ("PullRequestReviewComment", {
            "id": lambda a: c["node_id"], "databaseId": lambda a: c["id"], "body": lambda a: c["body"],
            "author": lambda a: self._actor(c["user"]), "createdAt": lambda a: c["created_at"],
            "replyTo": lambda a: ("PullRequestReviewComment", {"databaseId": lambda b: reply_to}) if reply_to else None,
            "reactions": lambda a: self._reactions(int(c["id"]), a),
        })

    def thread(self, root: Mapping[str, Any]) -> Obj:
        """A review thread: its root comment and the replies to it, in order."""
        thread_id = f"PRRT_{root['id']}"
        comments = [root] + [c for c in self.fake.review_comments.values() if c["in_reply_to_id"] == root["id"]]
        return ("PullRequestReviewThread", {
            "id": lambda a: thread_id, "isResolved": lambda a: thread_id in self.fake.resolved_threads,
            "isOutdated": lambda a: False, "viewerCanResolve": lambda a: self.fake.viewer_can_resolve,
            "path": lambda a: root["path"], "line": lambda a: root["line"],
            "comments": lambda a: _connection("comments", [self._comment(c) for c in comments], a),
        })

    def _pull(self, owner: str, repo: str, number: int) -> Obj:
        pull = self.fake.pulls.get((owner, repo, number))
        if pull is None:
            raise QueryError(f"Could not resolve to a PullRequest with the number of {number}.", "NOT_FOUND",
                             ["repository", "pullRequest"])
        roots = [c for c in self.fake.review_comments.values()
                 if c["_pull"] == number and c["in_reply_to_id"] is None and not c["_pending"]
                 and (pull.owner, pull.repo) == (owner, repo)]
        return ("PullRequest", {"number": lambda a: number,
                                "reviewThreads": lambda a: _connection("reviewThreads", [self.thread(r) for r in roots],
                                                                       a)})

    def repository(self, args: dict[str, Any]) -> Obj:
        """`repository(owner:, name:)`: only repositories the token can see."""
        owner, name = str(args.get("owner")), str(args.get("name"))
        inst = self.fake.installations[self.token.installation_id]
        if owner != inst.owner or name not in self.token.repos:
            raise QueryError(f"Could not resolve to a Repository with the name '{owner}/{name}'.", "NOT_FOUND",
                             ["repository"])
        return ("Repository", {"pullRequest": lambda a: self._pull(owner, name, int(a["number"]))})


def _forbidden(key: str) -> dict[str, Any]:
    return {"data": {key: None}, "errors": [{
        "type": "FORBIDDEN", "path": [key], "extensions": {"saml_failure": False},
        "locations": [{"line": 1, "column": 1}], "message": "Resource not accessible by integration"}]}


def _resolve(fake: Any, token: Any, field: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    key = field.alias.value if field.alias else field.name.value
    thread_id = str((_args(field, variables).get("input") or {}).get("threadId") or "")
    root_id = thread_id.removeprefix("PRRT_")
    root = fake.review_comments.get(int(root_id)) if thread_id.startswith("PRRT_") and root_id.isdigit() else None
    if root is None or root["in_reply_to_id"] is not None:
        return {"data": {key: None}, "errors": [{
            "type": "NOT_FOUND", "path": [key], "locations": [{"line": 1, "column": 1}],
            "message": f"Could not resolve to a node with the global id of '{thread_id}'"}]}
    granted = token.permissions.get("pull_requests")
    if granted not in ("write", "admin") or not fake.viewer_can_resolve:
        return _forbidden(key)
    fake.resolved_threads.add(thread_id)
    graph = ThreadsGraph(fake, token)
    payload: Obj = ("ResolveReviewThreadPayload", {"thread": lambda a: graph.thread(root),
                                                   "clientMutationId": lambda a: None})
    return {"data": {key: _select(payload, field, variables, [key])}}


def answer_threads(fake: Any, token: Any, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The response body for a review-threads query or a `resolveReviewThread` mutation; None for anything else
    (the caller tries the other GraphQL fakes)."""
    query, variables = str(body.get("query") or ""), body.get("variables") or {}
    try:
        document = parse(query)
    except GraphQLSyntaxError as exc:
        return {"errors": [{"message": f"Parse error: {exc.message}"}]}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return {"errors": [{"message": "this fake answers exactly one operation"}]}
    operation = operations[0]
    top = [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]
    if operation.operation.value == "mutation":
        if [f.name.value for f in top] != ["resolveReviewThread"]:
            return {"errors": [{"message": "this fake answers the resolveReviewThread mutation only"}]}
        return _resolve(fake, token, top[0], variables)
    if not _selects(top, "pullRequest"):
        return None
    graph = ThreadsGraph(fake, token)
    data: dict[str, Any] = {}
    try:
        for field in top:
            if field.name.value != "repository":
                raise QueryError("this fake answers `repository` queries only")
            key = field.alias.value if field.alias else "repository"
            data[key] = _select(graph.repository(_args(field, variables)), field, variables, [key])
    except QueryError as exc:
        error: dict[str, Any] = {"message": str(exc), "locations": [{"line": 1, "column": 1}]}
        if exc.kind:
            error["type"] = exc.kind
        if exc.path:
            error["path"] = exc.path
        return {"data": None, "errors": [error]}
    return {"data": data}


def _selects(fields: list[FieldNode], name: str) -> bool:
    """Whether any field below `fields` is named `name`."""
    pending = list(fields)
    while pending:
        field = pending.pop()
        if field.name.value == name:
            return True
        pending += [s for s in (field.selection_set.selections if field.selection_set else ())
                    if isinstance(s, FieldNode)]
    return False
