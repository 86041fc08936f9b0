"""Which links in model text may stay clickable: only pages of this repository, judged on the normalised URL.

A URL is normalised before the allow-list check the way a browser would read it: backslashes as slashes,
percent-encoding decoded, dot segments (`/../`) removed; a URL with user-info (`user@`), another scheme, host or port
is refused. `https://github.com/o/r/../../login/oauth/authorize` normalises to `/login/...` and is refused.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

# Characters left as they are when the normalised path is encoded again (RFC 3986 pchar minus `%`, plus `/`).
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: `/a/b/../c/./d` is `/a/c/d`; a `..` above the root stays at the root."""
    out: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                out.append("")
            continue
        if segment == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    joined = "/".join(out)
    return joined if joined.startswith("/") or not path.startswith("/") else "/" + joined


def normalise_url(url: str) -> str | None:
    """The URL as a browser resolves it (scheme and host lower-cased, path decoded and dot-free), or None if odd."""
    text = url.strip().replace("\\", "/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc or parts.username is not None or port is not None:
        return None
    decoded = unquote(parts.path)
    for _ in range(2):  # double encoding (`%252e`) as a proxy might read it; deeper nesting is refused
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
    else:
        return None
    path = remove_dot_segments(decoded.replace("\\", "/"))
    safe_path = quote(path, safe=_PATH_SAFE)
    return urlunsplit((parts.scheme.lower(), parts.hostname.lower(), safe_path, parts.query, parts.fragment))


def repo_link(url: str, repo_url: str) -> str | None:
    """The normalised `url` when it is a page of the repository at `repo_url` (same scheme and host), else None."""
    base = normalise_url(repo_url.rstrip("/")) if repo_url else None
    target = normalise_url(url)
    if base is None or target is None:
        return None
    base = base.rstrip("/")
    base_parts, target_parts = urlsplit(base), urlsplit(target)
    if (base_parts.scheme, base_parts.hostname) != (target_parts.scheme, target_parts.hostname):
        return None
    prefix, path = base_parts.path.lower(), target_parts.path.lower()
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return target
