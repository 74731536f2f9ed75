"""The Slack bot: the same Coach in team channels and DMs (``python -m coach.slack``).

- format.py: Answer/Grade -> Slack mrkdwn messages within Slack's limits (pure).
- app.py: ``create_app(coach, token=..., signing_secret=..., state=..., progress=...)`` -> a slack_bolt App;
  event claims, thread memory, rounds and progress live in coach.state (shared by replicas).
- server.py: HTTP mode (Bolt's WSGI adapter on a threaded server) and Socket Mode.
- __main__.py: the entry point; the only place that reads SLACK_* variables.

slack_bolt is imported by app.py and server.py only, so ``coach.slack.format``
stays light; ``create_app`` is loaded on first use.
"""


def __getattr__(name):
    if name in ("create_app", "SlackSetupError"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
