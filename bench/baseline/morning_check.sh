#!/usr/bin/env bash
# Runbook 1.1 (daily-morning-check.sh), made runnable. Corrections, minimal:
# - the cerniq API calls (curl api.cerniq.app) read the same tables, so they become the psql they stand for;
# - `KEYS bull:*:waiting` names no BullMQ key: BullMQ's list is `wait` (KEYS kept: that is the baseline);
# - the phone loop runs over the phones in the DB instead of a hard-coded 1..20.
source "$(dirname "$0")/_env.sh"
echo "=== CERNIQ OUTREACH MORNING CHECK ==="
# 1. Check all phones are online
pq -t -c "SELECT phone_label FROM wa_phone_numbers WHERE status <> 'ACTIVE'"
# 2. Check quota reset happened (the API reads each phone's counter)
for phone in $(pq -t -A -c "SELECT id FROM wa_phone_numbers ORDER BY id"); do
  echo "$phone $(rcli GET "quota:wa:${phone}:${TODAY}")"
done
# 3. Check pending reviews
pq -t -c "SELECT count(*) FROM human_review_queue WHERE status = 'PENDING'"
# 4. Check queue depths
rcli -n 2 KEYS "bull:*:wait" | xargs -r -I {} redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --no-auth-warning -n 2 LLEN {}
# 5. Check for SLA breaches overnight
pq -t -c "SELECT count(*) FROM human_review_queue WHERE status IN ('PENDING','ASSIGNED') AND sla_due_at < now()"
# 6. Verify TimelinesAI connection
for phone in $(pq -t -A -c "SELECT id FROM wa_phone_numbers ORDER BY id"); do
  status=$(rcli GET "phone:status:${phone}")
  echo "Phone $phone: $status"
done
