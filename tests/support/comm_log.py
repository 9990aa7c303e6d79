"""comm_log rows for the archive tests: old ones past the 90-day cutoff and recent ones, interleaved by id."""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_COMM_LOG
from tests.support.seed import TENANT_ID


def add_log_rows(platform, old, recent, old_age_days=95):
    """`old` rows past the 90-day cutoff and `recent` ones, interleaved by id, with varied content.

    Returns (rows older than 90 days, all rows) as the table then holds them.
    """
    platform.sql(
        "INSERT INTO " + TABLE_COMM_LOG + " (tenant_id, lead_id, phone_id, channel, direction, status, email, "
        "bounce_reason, campaign_id, quota_cost, created_at) "
        "SELECT %s, md5(g::text)::uuid, 'phone_' || lpad((g %% 20 + 1)::text, 2, '0'), "
        "CASE WHEN g %% 3 = 0 THEN 'EMAIL' ELSE 'WHATSAPP' END, "
        "CASE WHEN g %% 7 = 0 THEN 'INBOUND' ELSE 'OUTBOUND' END, "
        "CASE WHEN g %% 11 = 0 THEN 'BOUNCED' ELSE 'SENT' END, CASE WHEN g %% 3 = 0 THEN 'lead' || g || '@x.ro' END, "
        "CASE WHEN g %% 11 = 0 THEN '550 5.1.1' END, 'camp-' || (g %% 5), (g %% 3 <> 0)::int, "
        "CASE WHEN g * %s / %s > (g - 1) * %s / %s THEN now() - make_interval(days => %s) - g * interval '1 minute' "
        "ELSE now() - g * interval '1 second' END "
        "FROM generate_series(1::bigint, %s) AS g",
        (str(TENANT_ID), old, old + recent, old, old + recent, old_age_days, old + recent))
    return platform.sql("SELECT count(*) FILTER (WHERE created_at < now() - interval '90 days'), count(*) FROM "
                        + TABLE_COMM_LOG)[0]
