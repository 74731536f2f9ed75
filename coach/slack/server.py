"""HTTP mode: Bolt's WSGI adapter on a threaded wsgiref server.

    server = serve_http(app, "127.0.0.1", 3000)   # bound and listening; port 0 picks a free port
    server.serve_forever()                          # or threading.Thread(target=server.serve_forever)

Every request goes through ``App.dispatch`` (signature check first), so this
adapter adds no logic of its own.  One thread per request keeps a burst of
events from queueing behind each other's acks; the answering itself runs on
the bot's pool after the ack.  Behind a TLS-terminating proxy in production:
Slack only calls https URLs.
"""

from __future__ import annotations

import logging
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt.adapter.wsgi import SlackRequestHandler

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog; socketserver's 5 resets connections under a burst of events


class _LoggingHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # access log to logging, not stderr
        log.debug("%s %s", self.address_string(), format % args)


def serve_http(app, host: str = "127.0.0.1", port: int = 3000, path: str = EVENTS_PATH) -> WSGIServer:
    """A started-but-not-serving server for ``app`` at ``http://host:port{path}`` (events and /coach)."""
    return make_server(host, port, SlackRequestHandler(app, path=path), server_class=ThreadingWSGIServer,
                       handler_class=_LoggingHandler)


def check_app_token(app_token: str | None) -> None:
    """SlackSetupError unless ``app_token`` looks like an app-level token (xapp-…)."""
    from .app import SlackSetupError

    if not app_token:
        raise SlackSetupError("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token with the "
                              "connections:write scope (xapp-…, Slack app settings → Basic Information → "
                              "App-Level Tokens); export it as SLACK_APP_TOKEN, or run without --socket")
    if not app_token.startswith("xapp-"):
        raise SlackSetupError("SLACK_APP_TOKEN is not an app-level token (those start with xapp-): generate one under "
                              "Basic Information → App-Level Tokens with the connections:write scope")


def socket_mode_handler(app, app_token: str | None):
    """Bolt's Socket Mode handler, built but not connected (``.start()`` connects)."""
    check_app_token(app_token)
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    return SocketModeHandler(app, app_token)
