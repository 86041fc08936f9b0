"""Command line: `python -m bot serve|worker|migrate|status|retry|review|eval|check-config`; exit 0 ok, 2 usage/config,
1 failure."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bot.errors import BotError, ConfigError
from bot.logs import configure_logging
from bot.settings import Settings, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _serve(args: argparse.Namespace) -> int:
    from bot.wiring import serve

    settings = _settings(args)
    return serve(settings, host=args.host, port=args.port, workers=args.workers, migrate=not args.no_migrate)


def _worker(args: argparse.Namespace) -> int:
    from bot.wiring import run_workers

    return run_workers(_settings(args), count=args.workers)


def _migrate(args: argparse.Namespace) -> int:
    from bot.store.base import migrate_sync

    migrate_sync(_settings(args))
    print("database is at the latest migration")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from bot.status import status_command

    print(status_command(_settings(args)))
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    from bot.status import retry_command

    result = retry_command(_settings(args), args.job)
    if not result.ok:
        print(f"not requeued: {result.reason}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"job {args.job} queued again")
    return EXIT_OK


def _review(args: argparse.Namespace) -> int:
    from bot.local_review import run_local_review

    return run_local_review(args)


def _eval(args: argparse.Namespace) -> int:
    from bot.eval.run import run_eval_command

    return run_eval_command(args)


def _check_config(args: argparse.Namespace) -> int:
    from bot.config.files import check_config_file

    problems = check_config_file(args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"{args.file}: ok")
    return EXIT_OK


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the webhook server and in-process workers")
    serve.add_argument("--host", help="interface to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: PORT or 8000)")
    serve.add_argument("--workers", type=int, default=None, help="in-process review workers (default: WORKERS or 2)")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply database migrations at start")
    serve.set_defaults(handler=_serve)

    worker = sub.add_parser("worker", help="run review workers only (scale-out on PostgreSQL)")
    worker.add_argument("--workers", type=int, default=None, help="number of workers in this process")
    worker.set_defaults(handler=_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(handler=_migrate)

    status = sub.add_parser("status", help="queue, dead jobs, today's spend and the last reconciliation")
    status.set_defaults(handler=_status)

    retry = sub.add_parser("retry", help="queue a dead job again (fresh attempts)")
    retry.add_argument("job", type=int, help="the dead job's id (see `status`)")
    retry.set_defaults(handler=_retry)

    review = sub.add_parser("review", help="review a diff or a pull request from the terminal")
    review.add_argument("target", nargs="?", help="OWNER/REPO#N (needs GITHUB_TOKEN)")
    review.add_argument("--diff", metavar="FILE", help="a unified diff file, or - for stdin")
    review.add_argument("--format", choices=("text", "json", "github"), default="text")
    review.add_argument("--fail-on", choices=("critical", "high", "medium", "low", "never"), default="never")
    review.add_argument("--post", action="store_true", help="post the review to the pull request")
    review.set_defaults(handler=_review)

    evaluate = sub.add_parser("eval", help="measure the reviewer on the seeded pull requests (needs ANTHROPIC_API_KEY)")
    from bot.eval.run import add_arguments

    add_arguments(evaluate)
    evaluate.set_defaults(handler=_eval)

    check = sub.add_parser("check-config", help="validate a .github/senior-review.yml file")
    check.add_argument("file", help="path to the YAML file")
    check.set_defaults(handler=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the command, and map errors to exit codes."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
