.PHONY: demo test setup lint bench

# Set everything up and run the demo city (http://127.0.0.1:8000, admin / xueliang-demo).
demo:
	scripts/setup.sh
	.venv/bin/xueliang demo

# Set everything up and run every check: ruff, mypy, the tests on SQLite and PostgreSQL.
test:
	scripts/test.sh

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	scripts/bench.sh
