#!/usr/bin/env bash
# Runbook 8.1 step 3, as written (KEYS on production Redis is the defect; kept, since this is the baseline).
source "$(dirname "$0")/_env.sh"
rcli -n 2 KEYS "bull:dlq:*" | xargs -I {} redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --no-auth-warning -n 2 LTRIM {} 0 999
