#!/usr/bin/env bash
# Re-capture the golden vectors from real Celery 5.7.0 / Kombu 5.7.0.
#   interop/capture/run.sh                      # redis, amqp, sqs (if it answers), results
#   interop/capture/run.sh --envelopes redis --cases plain_args,chord
# Needs the brokers from `scripts/services up`. Writes protocol/vectors/captured/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [[ -x "$root/.venv/bin/python" ]]; then host_python="$root/.venv/bin/python"; else host_python="python3"; fi
celery_python="$("$host_python" "$root/interop/celery_env.py" ensure)"
exec "$celery_python" "$here/capture.py" "$@"
