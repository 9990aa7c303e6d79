#!/usr/bin/env bash
# Runbook 2.2 steps 1-3 for PHONE_ID, made runnable: `:waiting` corrected to BullMQ's `wait`. Deleting the lists
# leaves every job hash behind (orphans) and skips the marker and events: the defect the collection fixes.
source "$(dirname "$0")/_env.sh"
phone_id=${PHONE_ID:?}
pq -c "UPDATE wa_phone_numbers SET status = 'BANNED', status_changed_at = NOW() WHERE id = '${phone_id}'"
pq -c "
  UPDATE gold_lead_journey
  SET assigned_phone_id = NULL, assigned_at = NULL
  WHERE assigned_phone_id = '${phone_id}'
    AND engagement_stage IN ('COLD', 'CONTACTED_WA')
"
rcli -n 2 DEL "bull:q:wa:${phone_id}:wait" > /dev/null
rcli -n 2 DEL "bull:q:wa:${phone_id}:delayed" > /dev/null
