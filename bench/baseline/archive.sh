#!/usr/bin/env bash
# Runbook 8.1 step 2, as written: INSERT then DELETE in two statements (two transactions; rows that age past the
# cutoff in between are deleted without having been copied, and a failure between them doubles the next run's rows).
source "$(dirname "$0")/_env.sh"
pq -c "
  INSERT INTO gold_communication_log_archive
  SELECT * FROM gold_communication_log
  WHERE created_at < NOW() - INTERVAL '90 days'
"
pq -c "
  DELETE FROM gold_communication_log
  WHERE created_at < NOW() - INTERVAL '90 days'
"
