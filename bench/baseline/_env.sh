# Sourced by every baseline: the runbook's redis-cli/psql, pointed at the benchmark's private servers.
# Connection from the environment: REDIS_HOST REDIS_PORT REDISCLI_AUTH PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE.
set -euo pipefail
rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --no-auth-warning "$@"; }
pq() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
TODAY=$(TZ=${CERNIQ_TIMEZONE:-Europe/Bucharest} date +%Y-%m-%d)
