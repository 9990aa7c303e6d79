#!/usr/bin/env bash
# Runbook 3.1 step 1, as written (one redis-cli per active phone).
source "$(dirname "$0")/_env.sh"
for phone in $(pq -t -A -c "SELECT id FROM wa_phone_numbers WHERE status = 'ACTIVE'"); do
  usage=$(rcli GET "quota:wa:${phone}:${TODAY}")
  echo "Phone $phone: $usage/200"
done
