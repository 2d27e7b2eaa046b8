"""`make bench`: taskmesh measured side by side with references, in one run.

Run with the venv from the checkout: ``uv run python -m bench`` (``scripts/bench.sh`` does it).
Absolute numbers drift on a shared machine; the ratios (gateway/direct, nginx/direct, POST
against GET, pipeline/broker, the largest data size against the smallest) are what the report
is about, so every side runs in the same process tree, on the same servers, one right after
the other.
"""
