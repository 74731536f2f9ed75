"""``python -m coach.slack``: run the Slack bot over HTTP (Events API) or Socket Mode.

    SLACK_BOT_TOKEN=xoxb-… SLACK_SIGNING_SECRET=… python -m coach.slack --port 3000
    SLACK_BOT_TOKEN=xoxb-… SLACK_APP_TOKEN=xapp-… python -m coach.slack --socket
    … python -m coach.slack --check      # verify tokens (auth.test) and the index, then exit

The only place that reads SLACK_* variables (plus COACH_* through Settings: COACH_STATE_URL
and COACH_PROGRESS_URL choose the shared stores, coach.state; a wrong one is named on
stderr and the bot runs on without it).
SLACK_API_URL (optional) points the Web API client elsewhere, e.g. a proxy or a
test double.  Exit code 2 with one line on stderr when a variable is missing or
a token is rejected; the message names the variable and never echoes a secret.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..logs import configure_logging
from .app import SlackSetupError, create_app, verify_token
from .server import EVENTS_PATH, check_app_token, serve_http, socket_mode_handler


def main(argv=None, env=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coach.slack", description="Interview Coach Slack bot")
    ap.add_argument("--socket", action="store_true", help="Socket Mode (needs SLACK_APP_TOKEN) instead of HTTP")
    ap.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1; 0.0.0.0 for all)")
    ap.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    ap.add_argument("--workers", type=int, default=4, help="threads answering after the ack (default 4)")
    ap.add_argument("--check", action="store_true", help="verify configuration and exit without serving")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    configure_logging(logging.INFO if args.verbose else logging.WARNING, "%(levelname)s %(name)s %(message)s")
    env = os.environ if env is None else env
    try:
        from slack_sdk import WebClient

        token = env.get("SLACK_BOT_TOKEN", "").strip()
        if not token:
            raise SlackSetupError("SLACK_BOT_TOKEN is not set: export the app's Bot User OAuth Token (xoxb-…, "
                                  "Slack app settings → OAuth & Permissions) as SLACK_BOT_TOKEN")
        if not token.startswith("xoxb-"):
            raise SlackSetupError("SLACK_BOT_TOKEN is not a bot token (those start with xoxb-): use the Bot User "
                                  "OAuth Token from OAuth & Permissions")
        secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        app_token = env.get("SLACK_APP_TOKEN", "").strip()
        if args.socket:
            check_app_token(app_token)
        elif not secret:
            raise SlackSetupError("SLACK_SIGNING_SECRET is not set: export the app's Signing Secret (Basic "
                                  "Information → App Credentials) as SLACK_SIGNING_SECRET, or use --socket")
        base_url = env.get("SLACK_API_URL", "").strip() or WebClient.BASE_URL
        client = WebClient(token=token, base_url=base_url.rstrip("/") + "/")
        verify_token(client)  # fail fast, before loading the index

        from ..grading import Grader
        from ..pipeline import build_coach
        from ..settings import Settings

        settings = Settings.from_env(env)
        coach, status = build_coach(settings)
        for line in status:
            logging.getLogger("coach.slack").info(line)
        from ..state import open_progress, open_state

        state, state_problem = open_state(settings.state_url, settings.data_dir)
        progress, progress_problem = open_progress(settings.progress_url, settings.data_dir)
        for problem in (state_problem, progress_problem):
            if problem:  # the bot still starts and answers; it says which setting is wrong
                print(f"warning: {problem}", file=sys.stderr)
        grader = Grader.for_corpus(settings.corpus_dir, coach.retriever.embedder, llm=coach.llm)
        logging.getLogger("coach.slack").info(grader.second_look_state)
        app = create_app(coach, client=client, signing_secret=secret, socket_mode=args.socket, workers=args.workers,
                         state=state, progress=progress, claim_ttl=settings.claim_ttl, done_ttl=settings.done_ttl,
                         grader=grader)
        if args.socket:
            handler = socket_mode_handler(app, app_token)
            if args.check:
                print("ok: tokens accepted, index ready (Socket Mode not connected: --check)")
                return 0
            print("Interview Coach Slack bot: connecting in Socket Mode", file=sys.stderr)
            handler.start()
            return 0
        server = serve_http(app, args.host, args.port)
        if args.check:
            server.server_close()
            print(f"ok: tokens accepted, index ready, port {args.port} free (not serving: --check)")
            return 0
        print(f"Interview Coach Slack bot: listening on http://{args.host}:{server.server_port}{EVENTS_PATH}",
              file=sys.stderr)
        try:
            server.serve_forever()
        finally:
            server.server_close()
            app.coach_bot.close()
    except SlackSetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: cannot listen on {args.host}:{args.port} ({err.strerror or err}): choose another --port",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
