#!/usr/bin/env bash
# Runbook 6.2 steps 2 and 3, made runnable: the counters as quota_resync.sh (6.1 step 4) sets them, then one
# redis-cli SET per phone for its status key (psql -t -A so `read id status` gets two fields). Step 4 only echoes
# in the runbook; bench/dr_redis.py times the loop an operator would write for it (one queue.add per follow-up).
source "$(dirname "$0")/_env.sh"
"$(dirname "$0")/quota_resync.sh"
pq -t -A -F ' ' -c "SELECT id, status FROM wa_phone_numbers" | while read -r id status; do
  rcli SET "phone:status:${id}" "$status" > /dev/null
done
