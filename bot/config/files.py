"""The configuration as files: checking one (`python -m bot check-config`), a configuration written as YAML, and
the committed JSON Schema (`python -m bot.config.files --write-schema | --check-schema`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bot.config.layer import parse_layer
from bot.config.schema import RepoConfig

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "senior-review.schema.json"


def check_config_file(path: str | Path, allowed_models: Sequence[str] | None = None) -> list[str]:
    """Validate a configuration file; one `file:line: message` string per problem, [] when valid."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{file}: no such file"]
    except IsADirectoryError:
        return [f"{file}: is a directory, not a file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{file}: cannot read: {exc}"]
    _, problems = parse_layer(text, str(file), allowed_models)
    return [str(problem) for problem in problems]


def dump_config_yaml(config: RepoConfig) -> str:
    """The configuration as YAML, keys in documentation order (the `config` command's reply)."""
    data = config.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `.github/senior-review.yml`, generated from `RepoConfig`."""
    schema = RepoConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text() -> str:
    """The committed schema file's exact text."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.config.files --write-schema | --check-schema`: regenerate or verify the committed schema."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write-schema"]:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(json_schema_text(), encoding="utf-8")
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if args == ["--check-schema"]:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.is_file() else ""
        if current != json_schema_text():
            print(f"{SCHEMA_PATH} is out of date: run python -m bot.config.files --write-schema", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH}: up to date")
        return 0
    print("usage: python -m bot.config.files --write-schema | --check-schema", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
