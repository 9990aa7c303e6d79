#!/usr/bin/env bash
# Runbook 6.1 step 4, made runnable: psql -t -A so `read phone count` gets two fields (the runbook's aligned
# output with headers would feed garbage to redis-cli); `created_at > CURRENT_DATE` kept as written (the server's
# date, not the platform's business day: one of the defects the collection fixes).
source "$(dirname "$0")/_env.sh"
pq -t -A -F ' ' -c "
  SELECT phone_id, COUNT(*) as count
  FROM gold_communication_log
  WHERE quota_cost = 1
    AND created_at > CURRENT_DATE
    AND channel = 'WHATSAPP'
  GROUP BY phone_id
" | while read -r phone count; do
  rcli SET "quota:wa:${phone}:${TODAY}" "$count" EX 172800 > /dev/null
done
