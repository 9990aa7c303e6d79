"""Realistic, deterministic platform data: the demo stack, the integration tests and the benchmarks use this one seeder.

Everything goes in with COPY and one Redis pipeline, so 1,000 phones and 200,000 log rows seed in seconds.
BullMQ jobs go in through the bullmq package (its Lua scripts), as the platform's producers add them.
"""

from __future__ import annotations

import asyncio
import io
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract

TENANT_ID = uuid.UUID("5b1f0c1e-0000-4000-8000-00000000c3e1")


@dataclass
class SeedPlan:
    phones: int = 20
    leads: int = 5000
    wa_messages_today: int | None = None  # None: 20..190 per active phone
    old_log_rows: int = 3000
    reviews: int = 300
    jobs_per_phone: int = 12
    followups: int | None = None  # None: every lead with a future next_action_at gets a delayed job
    dlq_entries: int = 120
    timezone: str = contract.DEFAULT_TIMEZONE
    seed: int = 42
    offline: tuple = ("phone_07", "phone_13")
    banned: tuple = ("phone_19",)
    # Deliberate faults the checks must find: a Redis status that disagrees with the DB, a leaking counter,
    # a counter without TTL, yesterday's keys left behind.
    drift_phone: str = "phone_13"
    leak_phone: str = "phone_05"
    leak_extra: int = 15
    no_ttl_phone: str = "phone_11"
    stale_yesterday_keys: bool = True
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def phone_id(n):
    return "phone_{0:02d}".format(n)


def phone_number(n):
    return "+40700{0:06d}".format(n)


def timelinesai_account_id(n):
    return "40700{0:06d}@s.whatsapp.net".format(n)


def _copy(cur, table, columns, rows):
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert("COPY {0} ({1}) FROM STDIN".format(table, ", ".join(columns)), buf)


def seed_postgres(conn, plan):
    """Insert the plan's rows; returns the facts the Redis side and the tests need."""
    rnd = random.Random(plan.seed)
    now = plan.now
    today = contract.business_day(plan.timezone, now)
    day_start = contract.business_day_bounds(today, plan.timezone)[0]
    phones = []
    for n in range(1, plan.phones + 1):
        pid = phone_id(n)
        status = "BANNED" if pid in plan.banned else "OFFLINE" if pid in plan.offline else "ACTIVE"
        phones.append((pid, TENANT_ID, phone_number(n), "Sales {0:02d}".format(n), timelinesai_account_id(n), status,
                       (now - timedelta(days=rnd.randint(1, 60))).isoformat(), contract.DEFAULT_DAILY_QUOTA, "t",
                       (now - timedelta(days=90 + n)).isoformat()))
    active = [p[0] for p in phones if p[5] == "ACTIVE"]

    leads = []
    stages = contract.ENGAGEMENT_STAGES
    weights = (40, 25, 15, 10, 5, 5)
    for i in range(plan.leads):
        stage = rnd.choices(stages, weights)[0]
        assigned = phones[i % len(phones)][0] if stage in ("COLD", "CONTACTED_WA", "REPLIED", "CONVERTED") else None
        assigned_at = (now - timedelta(hours=rnd.randint(1, 400))).isoformat() if assigned else None
        next_action = None
        if stage in ("COLD", "CONTACTED_WA", "CONTACTED_EMAIL") and rnd.random() < 0.6:
            next_action = (now + timedelta(minutes=rnd.randint(5, 60 * 24 * 5))).isoformat()
        paused = "t" if next_action and rnd.random() < 0.1 else "f"
        lead_id = uuid.UUID(int=rnd.getrandbits(128), version=4)
        leads.append((lead_id, TENANT_ID, stage, assigned, assigned_at, next_action, paused,
                      "lead{0}@example-{1}.ro".format(i, i % 97), "+4075{0:07d}".format(i), now.isoformat()))

    log_rows = []
    wa_counts = {}
    for pid in active:
        count = plan.wa_messages_today if plan.wa_messages_today is not None else rnd.randint(20, 190)
        wa_counts[pid] = count
        span = max(1, int((now - day_start).total_seconds()) - 1)
        for _message in range(count):
            created = day_start + timedelta(seconds=rnd.randint(0, span))
            lead = leads[rnd.randrange(len(leads))][0] if leads else None
            log_rows.append((TENANT_ID, lead, pid, "WHATSAPP", "OUTBOUND", rnd.choice(("SENT", "DELIVERED", "READ")),
                             None, None, None, 1, created.isoformat()))
    for i in range(max(1, plan.leads // 25)):
        lead = leads[i % len(leads)] if leads else None
        bounced = i % 6 == 0
        log_rows.append((TENANT_ID, lead[0] if lead else None, None, "EMAIL", "OUTBOUND",
                         "BOUNCED" if bounced else "SENT", lead[7] if lead else None,
                         "550 5.1.1 mailbox unavailable" if bounced else None, "camp-demo-1", 0,
                         (now - timedelta(minutes=rnd.randint(1, 60 * 20))).isoformat()))
    for i in range(plan.old_log_rows):
        created = now - timedelta(days=91 + rnd.randint(0, 200), seconds=rnd.randint(0, 86399))
        log_rows.append((TENANT_ID, None, active[i % len(active)] if active else None, "WHATSAPP", "OUTBOUND", "SENT",
                         None, None, None, 1, created.isoformat()))

    reviews = []
    for i in range(plan.reviews):
        priority = rnd.choices(contract.REVIEW_PRIORITIES, (10, 25, 45, 20))[0]
        status = rnd.choices(contract.REVIEW_STATUSES, (45, 20, 30, 5))[0]
        created = now - timedelta(minutes=rnd.randint(10, 60 * 30))
        sla = created + timedelta(hours={"URGENT": 1, "HIGH": 4, "NORMAL": 12, "LOW": 24}[priority])
        assigned_to = "reviewer{0}".format(i % 4) if status != "PENDING" else None
        reviews.append((TENANT_ID, leads[i % len(leads)][0] if leads else None,
                        rnd.choice(("negative_sentiment", "pricing_question", "legal_request", "unclear_intent")),
                        priority, status, assigned_to, created.isoformat() if assigned_to else None, sla.isoformat(),
                        created.isoformat(), (created + timedelta(hours=1)).isoformat()
                        if status in ("RESOLVED", "AUTO_APPROVED") else None))

    yesterday = today - timedelta(days=1)
    usage = [(p[0], yesterday.isoformat(), rnd.randint(30, 200), contract.DEFAULT_DAILY_QUOTA) for p in phones]

    with conn, conn.cursor() as cur:
        _copy(cur, contract.TABLE_PHONES, ("id", "tenant_id", "phone_number", "phone_label", "timelinesai_account_id",
                                           "status", "status_changed_at", "daily_quota_limit", "is_enabled",
                                           "created_at"), phones)
        _copy(cur, contract.TABLE_LEADS, ("lead_id", "tenant_id", "engagement_stage", "assigned_phone_id",
                                          "assigned_at", "next_action_at", "sequence_paused", "email", "phone_number",
                                          "updated_at"), leads)
        _copy(cur, contract.TABLE_COMM_LOG, ("tenant_id", "lead_id", "phone_id", "channel", "direction", "status",
                                             "email", "bounce_reason", "campaign_id", "quota_cost", "created_at"),
              log_rows)
        _copy(cur, contract.TABLE_REVIEWS, ("tenant_id", "lead_id", "reason", "priority", "status", "assigned_to",
                                            "assigned_at", "sla_due_at", "created_at", "resolved_at"), reviews)
        _copy(cur, contract.TABLE_QUOTA_USAGE, ("phone_id", "usage_date", "messages_sent", "quota_limit"), usage)
        cur.execute("ANALYZE")
    followups = [(row[0], row[5]) for row in leads if row[5] and row[6] == "f"]
    return dict(phones=phones, active=active, wa_counts=wa_counts, today=today, followups=followups, leads=leads)


def seed_redis(client, plan, facts):
    """Phone status keys, today's quota counters (with the plan's deliberate faults) and yesterday's leftovers."""
    today = facts["today"]
    expire_at = contract.quota_key_expire_at(today, plan.timezone)
    pipe = client.pipeline(transaction=False)
    for pid, *_rest in facts["phones"]:
        status = _rest[4]
        if pid == plan.drift_phone:
            status = "ACTIVE"
        pipe.set(contract.phone_status_key(pid), status)
    for pid, count in facts["wa_counts"].items():
        key = contract.quota_key(pid, today)
        value = count + (plan.leak_extra if pid == plan.leak_phone else 0)
        pipe.set(key, value)
        if pid != plan.no_ttl_phone:
            pipe.expireat(key, expire_at)
        if plan.stale_yesterday_keys:
            old_key = contract.quota_key(pid, today - timedelta(days=1))
            pipe.set(old_key, 150)
    pipe.execute()


async def _seed_bullmq(connection, plan, facts):
    from bullmq import Queue

    rnd = random.Random(plan.seed + 1)
    now_ms = int(plan.now.timestamp() * 1000)
    queues = []
    try:
        for pid in facts["active"]:
            queue = Queue(contract.phone_queue(pid), {"connection": connection, "prefix": contract.BULLMQ_PREFIX})
            queues.append(queue)
            jobs = []
            for j in range(plan.jobs_per_phone):
                delayed = j % 3 != 0
                opts = {"jobId": "wa-{0}-{1}".format(pid, j), "removeOnComplete": 1000}
                if delayed:
                    opts["delay"] = rnd.randint(60, 6 * 3600) * 1000
                jobs.append({"name": "send", "data": {"phoneId": pid, "seq": j}, "opts": opts})
            for start in range(0, len(jobs), 1000):
                await queue.addBulk(jobs[start:start + 1000])
        followup = Queue(contract.QUEUE_FOLLOWUP, {"connection": connection, "prefix": contract.BULLMQ_PREFIX})
        queues.append(followup)
        items = facts["followups"] if plan.followups is None else facts["followups"][:plan.followups]
        jobs = []
        for lead_id, due_iso in items:
            due_ms = int(datetime.fromisoformat(due_iso).timestamp() * 1000)
            jobs.append({"name": "followup", "data": {"leadId": str(lead_id)},
                         "opts": {"jobId": contract.followup_job_id(lead_id, due_ms), "delay": max(0, due_ms - now_ms),
                                  "removeOnComplete": True}})
        for start in range(0, len(jobs), 1000):
            await followup.addBulk(jobs[start:start + 1000])
        reset = Queue(contract.QUEUE_QUOTA_RESET, {"connection": connection, "prefix": contract.BULLMQ_PREFIX})
        queues.append(reset)
        await reset.upsertJobScheduler(contract.QUOTA_RESET_SCHEDULER_ID,
                                       {"pattern": contract.QUOTA_RESET_CRON, "tz": plan.timezone},
                                       "reset", {})
    finally:
        for queue in queues:
            await queue.close()


def seed_bullmq(redis_kwargs, plan, facts, bullmq_client):
    asyncio.run(_seed_bullmq(dict(redis_kwargs), plan, facts))
    pipe = bullmq_client.pipeline(transaction=False)
    for i in range(plan.dlq_entries):
        pipe.lpush(contract.DLQ_LIST_KEY, '{{"jobId":"dead-{0}","failedReason":"TimelinesAI 503"}}'.format(i))
    pipe.execute()


def seed_all(pg_conn, redis_server, plan=None, bullmq_db=contract.DEFAULT_BULLMQ_DB):
    """Everything: PostgreSQL rows, Redis keys, BullMQ jobs. `redis_server` is a services.RedisServer."""
    plan = plan or SeedPlan()
    facts = seed_postgres(pg_conn, plan)
    seed_redis(redis_server.client(contract.DEFAULT_REDIS_DB), plan, facts)
    seed_bullmq(dict(host=redis_server.host, port=redis_server.port, db=bullmq_db, password=redis_server.password),
                plan, facts, redis_server.client(bullmq_db))
    return facts


# The small plan the multi-host harnesses (split_platform, the lab) load: a few of everything, fast to reseed.
SMALL_SEED = dict(phones=6, leads=300, old_log_rows=200, reviews=40, jobs_per_phone=5, dlq_entries=30,
                  offline=("phone_04",), banned=(), drift_phone="phone_04", leak_phone="phone_02",
                  no_ttl_phone="phone_03")


def seed_small(pg_server, redis_server, **overrides):
    """SMALL_SEED, then `overrides` (SeedPlan fields), into a services.PostgresServer and RedisServer."""
    conn = pg_server.connect()
    try:
        return seed_all(conn, redis_server, SeedPlan(**dict(SMALL_SEED, **overrides)))
    finally:
        conn.close()
