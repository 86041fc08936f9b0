"""Senior review: a self-hosted GitHub App that reviews pull requests like a senior backend developer.

Layer rules. `lint-imports` checks the imports with the contracts in pyproject.toml; tests/test_layers.py shows
that each contract can fail and checks the broad catches, tests/test_imports.py that nothing is loaded by name;
all run in `python3 dev.py test`.

- The core imports no adapter, directly or through another module: `bot.analysis`, `bot.answer`, `bot.budget`,
  `bot.commands`, `bot.config`, `bot.context`, `bot.context_render`, `bot.contract`, `bot.diff`, `bot.domain`,
  `bot.errors`, `bot.evidence`, `bot.findings`, `bot.incidents`, `bot.invisible`, `bot.linear`, `bot.links`,
  `bot.masking`, `bot.merge`, `bot.prices`, `bot.prompts`, `bot.prose`, `bot.render`, `bot.sanitize`,
  `bot.settings`, `bot.trust`, `bot.verify`. What a core function needs from
  outside (a repository client, the store) is passed in, typed by a Protocol.
- The adapters and the application around the core: `bot.github` (GitHub), `bot.model` (Claude), `bot.store`
  (the database), `bot.app`, `bot.webhook`, `bot.routing`, `bot.registry`, `bot.jobs`, `bot.wiring`,
  `bot.services`, `bot.pipeline`, `bot.review`, `bot.command_jobs`, `bot.thread_jobs`, `bot.memory`,
  `bot.spending`, `bot.reconcile`, `bot.catch_up`, `bot.instance`, `bot.metrics`, `bot.logs`, `bot.status`,
  `bot.cli`, `bot.local_review`, `bot.local_output`, `bot.eval`. The core imports none of the server libraries
  either (SQLAlchemy, starlette, httpx, alembic, uvicorn, prometheus_client, the database drivers).
- Only `bot.github` imports githubkit, only `bot.model` imports anthropic, only `bot.diff` imports unidiff.
- No import cycles among bot's modules, and no module is loaded by name: `bot.wiring` passes the job handlers,
  routes and background tasks explicitly.
- Broad catches (`except Exception`, an `except BaseException` that does not re-raise, `contextlib.suppress` of
  either) only at these edges, each logging or handing on what it caught; everywhere else the precise errors
  (bot/errors.py, or the library's own):
  - `bot.webhook.handle_webhook`: the web edge; no delivery yields a 500 (a 503 makes GitHub redeliver).
  - `bot.store.group_commit.GroupCommit._write_and_answer`: a failed batch is written again one delivery at a
    time, and each one's error is handed to its waiting request, which raises it at the web edge.
  - `bot.jobs.WorkerPool._attempt`: a handler's failure becomes a retry or a dead letter; a cancelled attempt's
    last error is dropped (the job is released or retried).
  - `bot.jobs.WorkerPool._loop`, `bot.jobs.WorkerPool._renew`, `bot.jobs.WorkerPool.prune_if_due`: a worker
    loop survives a failed claim, lease renewal or pruning round and tries again.
  - `bot.jobs.WorkerPool._dead`: a failing dead-letter hook does not stop the others.
  - `bot.review._close_check_quietly`: closing the check run after a failed review is best effort; the review's
    own error is re-raised.
  - `bot.reconcile.Reconciler._guarded`: the reconciler's loop tries again at its next tick.
  - `bot.app._background`, `bot.app._shutdown`: a background task's failure never stops the server; a start-up
    failure was logged when it happened.
  - `bot.registry.AppContext.aclose`: at shutdown, one client failing to close does not keep the other open.
  - `bot.registry.AppContext.warm_up`: warming the clients up at start is an optimisation; a failure is logged and
    the first job does that work instead (meeting the same error, if any, precisely).
"""

__version__ = "0.1.0"
