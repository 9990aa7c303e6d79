#!/usr/bin/env bash
# The runbook's per-phone reads, made runnable: 1.1 step 6 (each phone's status) and 3.1 step 1 (each phone's quota
# use). Corrections, minimal: both loops run over the phones in the DB (1.1 hard-codes 1..20, 3.1 only ACTIVE ones),
# so they read what wa_phone_info + quota_counter_info read.
source "$(dirname "$0")/_env.sh"
# 1.1 step 6: Verify TimelinesAI connection
for phone in $(pq -t -A -c "SELECT id FROM wa_phone_numbers ORDER BY id"); do
  status=$(rcli GET "phone:status:${phone}")
  echo "Phone $phone: $status"
done
# 3.1 step 1: Check current usage across all phones
for phone in $(pq -t -A -c "SELECT id FROM wa_phone_numbers ORDER BY id"); do
  usage=$(rcli GET "quota:wa:${phone}:${TODAY}")
  echo "Phone $phone: $usage/200"
done
