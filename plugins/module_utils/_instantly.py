# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instantly.ai API v2: campaign state, campaign figures with bounce rates, bounced leads, the block list, and the
deliverability guard of the runbook's 4.1 (pause what bounces too much, mark the bounced leads, resume on request).

The vendor's facts (paths, status codes, filters, page sizes) are spelled here once, from the vendor's OpenAPI
document (tests/fakes/openapi/instantly-api-v2.subset.json); the runbook's /campaign/{id}/resume and
/campaign/{id}/analytics do not exist.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import postgres_connect, postgres_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._http import VendorClient, VendorSettings
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_campaign_id

SETTINGS = VendorSettings("Instantly API", "cerniq_instantly_base_url", "cerniq_instantly_api_key",
                          "CERNIQ_INSTANTLY_API_KEY")
# 100 requests/s and 6,000/min per workspace, shared by every key and API version.
RATE_WINDOWS = ((100, 1.0), (6000, 60.0))

STATUS_DRAFT = 0
STATUS_ACTIVE = 1
STATUS_PAUSED = 2
STATUS_COMPLETED = 3
STATUS_SUBSEQUENCES = 4
# Instantly's own pause on high bounces ("Bounce Protect" in the OpenAPI document's status enum).
STATUS_BOUNCE_PROTECT = -2
STATUS_NAMES = {
    STATUS_DRAFT: "draft",
    STATUS_ACTIVE: "active",
    STATUS_PAUSED: "paused",
    STATUS_COMPLETED: "completed",
    STATUS_SUBSEQUENCES: "running_subsequences",
    -99: "account_suspended",
    -1: "accounts_unhealthy",
    STATUS_BOUNCE_PROTECT: "bounce_protect",
}
# Statuses in which a campaign sends e-mail.
SENDING_STATUSES = (STATUS_ACTIVE, STATUS_SUBSEQUENCES)
# Already where `state` wants them: a draft or a completed campaign sends nothing, so "paused" holds for them;
# a campaign running its subsequences is running.
STATE_SATISFIED_BY = {
    "paused": (STATUS_PAUSED, STATUS_DRAFT, STATUS_COMPLETED),
    "active": (STATUS_ACTIVE, STATUS_SUBSEQUENCES),
}
STATE_ENDPOINT = {"paused": "pause", "active": "activate"}
STATE_STATUS = {"paused": STATUS_PAUSED, "active": STATUS_ACTIVE}

PAGE_LIMIT = 100
# A cursor walk that never ends is a vendor bug; this many pages of 100 is far past any workspace we run.
MAX_PAGES = 10000
BOUNCED_FILTER = "FILTER_VAL_BOUNCED"
BLOCK_LIST_BATCH = 1000

CAMPAIGN_MODULE = "instantly_campaign"
GUARD_MODULE = "instantly_deliverability_guard"
GUARD_PAUSE = "pause_campaigns"
GUARD_RESUME = "resume_campaigns"
# An operator's resume of a campaign Instantly paused itself (bounce protect): one audit row per campaign.
GUARD_RESUME_VENDOR = "resume_vendor_paused"
GUARD_BLOCK = "block_bounced"
GUARD_MARK = "mark_bounced_leads"
# A lead whose every e-mail address bounced is DEAD only while e-mail is all there is to it; a lead talking to us on
# WhatsApp, one that replied or converted keeps its stage (reported as kept).
BOUNCE_DEAD_STAGES = (contract.STAGE_COLD, contract.STAGE_CONTACTED_EMAIL)
# Only sends not known to have arrived turn BOUNCED; a DELIVERED or READ row contradicts a bounce.
BOUNCE_MARKABLE_LOG_STATUSES = (contract.LOG_QUEUED, contract.LOG_SENT)
BOUNCE_REASON_PREFIX = "instantly: bounced in campaign "


def instantly_client(params, **kwargs):
    return VendorClient(SETTINGS, params.get("instantly_base_url"), params.get("instantly_api_key"),
                        allow_http=params.get("allow_http", False), timeout=params.get("vendor_timeout"),
                        retries=params.get("vendor_retries"), rate_windows=RATE_WINDOWS, **kwargs)


def status_name(status):
    return STATUS_NAMES.get(status, "unknown_{0}".format(status))


def bounce_rate(sent, bounced):
    """Bounced leads over e-mails sent, as Instantly's own ops template computes it; 0 when nothing was sent."""
    return (bounced or 0) / sent if sent else 0.0


# --- reads ------------------------------------------------------------------------------------------------------

def paginate(client, method, path, params=None, body=None):
    """Every item of a cursor-paginated list. A page with data may still carry a cursor: only an empty page ends."""
    items = []
    cursor = None
    for _page in range(MAX_PAGES):
        page_params = dict(params or {})
        page_body = None
        if method == "GET":
            page_params["limit"] = PAGE_LIMIT
            if cursor:
                page_params["starting_after"] = cursor
        else:
            page_body = dict(body or {}, limit=PAGE_LIMIT)
            if cursor:
                page_body["starting_after"] = cursor
        page = client.request(method, path, params=page_params or None, json_body=page_body)
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise CerniqError("{0}: {1} {2} answered without an items list: the API changed or the base URL points "
                              "elsewhere ({3})".format(SETTINGS.name, method, path, SETTINGS.url_setting))
        if not page["items"]:
            return items
        items.extend(page["items"])
        next_cursor = page.get("next_starting_after")
        if not next_cursor or next_cursor == cursor:
            return items
        cursor = next_cursor
    raise CerniqError("{0}: {1} {2} still had pages after {3}: stopped".format(SETTINGS.name, method, path, MAX_PAGES))


def list_campaigns(client):
    return paginate(client, "GET", "/api/v2/campaigns")


def get_campaign(client, campaign_id):
    return client.request("GET", "/api/v2/campaigns/{0}".format(campaign_id), hints={
        404: "no campaign {0} in this Instantly workspace: check the id (instantly_campaign_info lists "
             "them)".format(campaign_id)})


def find_campaign(client, campaign_id=None, name=None):
    """The campaign with that id, or the one whose name is exactly `name` (case-insensitive)."""
    if campaign_id:
        return get_campaign(client, validate_campaign_id(campaign_id))
    wanted = (name or "").strip().lower()
    matches = [c for c in paginate(client, "GET", "/api/v2/campaigns", params={"search": name})
               if (c.get("name") or "").strip().lower() == wanted]
    if not matches:
        raise CerniqError("no Instantly campaign is named {0!r}: check the name (instantly_campaign_info lists "
                          "them)".format(name))
    if len(matches) > 1:
        raise CerniqError("{0} Instantly campaigns are named {1!r} ({2}): give the id instead".format(
            len(matches), name, ", ".join(c["id"] for c in matches)))
    return matches[0]


def campaign_analytics(client, campaign_ids=None, since=None):
    """{campaign id: analytics row}; a campaign that has not sent yet has no row."""
    params = {"exclude_total_leads_count": "true"}
    if campaign_ids:
        params["ids"] = list(campaign_ids)
    if since:
        params["start_date"] = since
    rows = client.request("GET", "/api/v2/campaigns/analytics", params=params)
    if not isinstance(rows, list):
        raise CerniqError("{0}: GET /api/v2/campaigns/analytics answered {1} instead of a list: the API changed or "
                          "the base URL points elsewhere".format(SETTINGS.name, type(rows).__name__))
    return {row.get("campaign_id"): row for row in rows if isinstance(row, dict)}


def bounced_leads(client, campaign_id):
    return paginate(client, "POST", "/api/v2/leads/list", body={"campaign": campaign_id, "filter": BOUNCED_FILTER})


def block_list_values(client):
    entries = paginate(client, "GET", "/api/v2/block-lists-entries")
    return {str(entry.get("bl_value") or "").lower() for entry in entries}


def describe(campaign, analytics=None):
    """What the modules return for a campaign: id, name, status and its name, and the figures behind the bounce rate."""
    row = analytics or {}
    sent = row.get("emails_sent_count") or 0
    bounced = row.get("bounced_count") or 0
    return dict(id=campaign.get("id"), name=campaign.get("name"), status=campaign.get("status"),
                status_name=status_name(campaign.get("status")), emails_sent=sent, bounced=bounced,
                bounce_rate_percent=round(100.0 * bounce_rate(sent, bounced), 3), has_analytics=analytics is not None)


def _since_iso(since, tz_name):
    if not since:
        return None
    moment = contract.parse_instant(since, tz_name, field="since")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def campaign_info(params, *, id=None, name=None, include_bounced_leads=False, since=None):
    """Campaigns (one, or all) with status name, analytics, bounce rate and optionally their bounced leads."""
    since_iso = _since_iso(since, params.get("timezone") or contract.DEFAULT_TIMEZONE)
    client = instantly_client(params)
    if id or name:
        campaigns = [find_campaign(client, id, name)]
        analytics = campaign_analytics(client, [campaigns[0]["id"]], since_iso)
    else:
        campaigns = list_campaigns(client)
        analytics = campaign_analytics(client, since=since_iso) if campaigns else {}
    described = []
    for campaign in campaigns:
        entry = describe(campaign, analytics.get(campaign.get("id")))
        entry["analytics"] = analytics.get(campaign.get("id"))
        if include_bounced_leads:
            leads = bounced_leads(client, campaign["id"])
            entry["bounced_leads"] = [dict(id=lead.get("id"), email=lead.get("email"),
                                           timestamp_last_contact=lead.get("timestamp_last_contact"))
                                      for lead in leads]
        described.append(entry)
    return dict(changed=False, campaigns=described, api=client.figures())


# --- campaign state ---------------------------------------------------------------------------------------------

def _audit_connection(params):
    return postgres_connect(params, require=(contract.TABLE_AUDIT,))


def _commit_audit(params, conn, what, record):
    """Write audit rows for a change the vendor already accepted; if that fails, say so without hiding the change."""
    try:
        with postgres_errors(params, conn):
            record()
            conn.commit()
    except CerniqError as exc:
        raise CerniqError("{0}, but its audit row could not be written: {1}".format(what, exc.msg),
                          changed=True) from exc


def set_campaign_state(params, *, state, id=None, name=None, reason=None, check_mode=False, want_diff=False):
    """Pause or activate one campaign, reading its status first: nothing is sent when it is already there."""
    if state not in STATE_ENDPOINT:
        raise CerniqError("state must be one of {0}, got {1!r}".format(", ".join(sorted(STATE_ENDPOINT)), state))
    client = instantly_client(params)
    # The audit log is where every change is recorded: it must be reachable before the vendor is touched.
    conn = _audit_connection(params)
    try:
        campaign = find_campaign(client, id, name)
        before = describe(campaign)
        changed = campaign.get("status") not in STATE_SATISFIED_BY[state]
        after = dict(before)
        if changed:
            after.update(status=STATE_STATUS[state], status_name=status_name(STATE_STATUS[state]))
            if not check_mode:
                path = "/api/v2/campaigns/{0}/{1}".format(campaign["id"], STATE_ENDPOINT[state])
                updated = client.request("POST", path, hints={404: "campaign {0} disappeared".format(campaign["id"])})
                if isinstance(updated, dict) and "status" in updated:
                    after = describe(updated)
                audit = AuditTrail(conn, CAMPAIGN_MODULE, params.get("audit_actor"))
                _commit_audit(params, conn, "Instantly campaign {0} is now {1}".format(campaign["id"], state),
                              lambda: audit.record("campaign_" + STATE_ENDPOINT[state], "instantly:campaign:" +
                                                   campaign["id"], reason, _state_view(before), _state_view(after)))
        result = dict(changed=changed, campaign=after, api=client.figures())
        if want_diff:
            result["diff"] = dict(before=_state_view(before), after=_state_view(after))
        return result
    finally:
        conn.close()


def _state_view(described):
    return dict(id=described["id"], name=described["name"], status=described["status"],
                status_name=described["status_name"])


# --- deliverability guard (runbook 4.1) -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GuardRequest:
    """One deliverability_guard run, validated: what deliverability_guard hands its pause or resume half."""

    scope: tuple  # the campaign ids named, lower case; empty: every campaign
    threshold: float  # bounce rate in percent above which a campaign is paused
    min_sent: int  # e-mails a campaign must have sent before its rate counts
    since: str | None  # analytics start date (YYYY-MM-DD), None: the campaign's whole life
    pause_all: bool
    cooldown: timedelta
    block: bool
    mark: bool
    lookback: timedelta
    resume: bool
    ignore_cooldown: bool
    resume_vendor_paused: bool
    reason: str | None


def deliverability_guard(params, *, max_bounce_rate=3.0, min_emails_sent=100, campaign_ids=None, since=None,
                         pause_all=False, cooldown="24h", resume=False, ignore_cooldown=False, block_bounced=False,
                         mark_bounced_leads=True, lookback="30d", reason=None, resume_vendor_paused=False,
                         check_mode=False, want_diff=False, now=None):
    """Guard mode: pause every campaign in scope whose bounce rate exceeds `max_bounce_rate` percent (from
    `min_emails_sent` sends), or every sending campaign with `pause_all` (recording a cool-down); optionally put the
    bounced addresses on the block list; mark the bounced leads in the database.

    Resume mode (`resume`): activate again the campaigns the guard paused, refused during a cool-down unless
    `ignore_cooldown`. With `resume_vendor_paused` (named campaigns and a reason), also the campaigns Instantly
    paused itself (status -2, bounce protect), each audited with its status before and after. Every input is
    validated and every read done before the first change.
    """
    tz_name = params.get("timezone") or contract.DEFAULT_TIMEZONE
    now = now or datetime.now(timezone.utc)
    if not 0 < float(max_bounce_rate) <= 100:
        raise CerniqError("max_bounce_rate is a percentage above 0 and at most 100, got {0!r}".format(max_bounce_rate))
    if int(min_emails_sent) < 1:
        raise CerniqError("min_emails_sent must be at least 1, got {0!r}".format(min_emails_sent))
    if resume and (pause_all or block_bounced):
        raise CerniqError("resume cannot be combined with pause_all or block_bounced: resume in a run of its own "
                          "after the investigation")
    if resume_vendor_paused:
        if not resume:
            raise CerniqError("resume_vendor_paused goes with resume=true (a resume run of its own)")
        if not campaign_ids:
            raise CerniqError("resume_vendor_paused resumes only campaigns named in campaigns: name the campaign(s) "
                              "Instantly paused (bounce protect) that the investigation cleared; nothing was changed")
        if not (reason or "").strip():
            raise CerniqError("resume_vendor_paused needs a reason (why Instantly's bounce protect may be overridden, "
                              "e.g. the ticket); nothing was changed")
    request = GuardRequest(
        scope=tuple(validate_campaign_id(c) for c in campaign_ids or []), threshold=float(max_bounce_rate),
        min_sent=int(min_emails_sent), since=_since_iso(since, tz_name), pause_all=pause_all,
        cooldown=contract.parse_duration(cooldown, "cooldown"), block=block_bounced, mark=mark_bounced_leads,
        lookback=contract.parse_duration(lookback, "lookback"), resume=resume, ignore_cooldown=ignore_cooldown,
        resume_vendor_paused=resume_vendor_paused, reason=reason)
    client = instantly_client(params)
    tables = (contract.TABLE_AUDIT, contract.TABLE_COMM_LOG, contract.TABLE_LEADS) if mark_bounced_leads and not \
        resume else (contract.TABLE_AUDIT,)
    conn = postgres_connect(params, require=tables)
    try:
        guard = _guard_resume if resume else _guard_pause
        return guard(params, conn, client, request, check_mode=check_mode, want_diff=want_diff, now=now)
    finally:
        conn.close()


def _campaigns_in_scope(client, scope):
    campaigns = {c["id"]: c for c in list_campaigns(client)}
    unknown = [cid for cid in scope if cid not in campaigns]
    if unknown:
        raise CerniqError("no campaign {0} in this Instantly workspace: check the ids (instantly_campaign_info "
                          "lists them); nothing was changed".format(", ".join(unknown)))
    return [campaigns[cid] for cid in scope] if scope else sorted(campaigns.values(), key=lambda c: c["id"])


def _guard_pause(params, conn, client, request, *, check_mode, want_diff, now):
    campaigns = _campaigns_in_scope(client, request.scope)
    analytics = campaign_analytics(client, request.scope or None, request.since) if campaigns else {}
    judged, to_pause, flagged = [], [], []
    for campaign in campaigns:
        entry = describe(campaign, analytics.get(campaign["id"]))
        entry["over_threshold"] = (entry["emails_sent"] >= request.min_sent
                                   and entry["bounce_rate_percent"] > request.threshold)
        sending = campaign.get("status") in SENDING_STATUSES
        if entry["over_threshold"]:
            flagged.append(entry)
        if sending and (entry["over_threshold"] or request.pause_all):
            entry["action"] = "pause"
            to_pause.append(entry)
        else:
            entry["action"] = "none"
        judged.append(entry)

    bounced = []
    for entry in flagged if (request.block or request.mark) else []:
        for lead in bounced_leads(client, entry["id"]):
            if lead.get("email"):
                bounced.append((lead["email"].strip().lower(), entry["id"]))
    emails = sorted({email for email, _cid in bounced})
    to_block = sorted(set(emails) - block_list_values(client)) if request.block and emails else []
    cutoff = now - request.lookback
    marking = _mark_bounced(params, conn, bounced, cutoff, write=False) if request.mark else None

    cooldown_until = (now + request.cooldown) if request.pause_all else None
    if not check_mode:
        audit = AuditTrail(conn, GUARD_MODULE, params.get("audit_actor"))
        _switch_campaigns(params, conn, client, audit, to_pause, "paused", GUARD_PAUSE, request.reason, dict(
            pause_all=request.pause_all, threshold_percent=request.threshold, min_emails_sent=request.min_sent,
            cooldown_until=cooldown_until.isoformat() if cooldown_until else None,
            bounce_rates={e["id"]: e["bounce_rate_percent"] for e in to_pause}))
        if to_block:
            for start in range(0, len(to_block), BLOCK_LIST_BATCH):
                client.request("POST", "/api/v2/block-lists-entries/bulk-create",
                               json_body={"bl_values": to_block[start:start + BLOCK_LIST_BATCH]})
            _commit_audit(params, conn, "{0} address(es) were added to the Instantly block list".format(len(to_block)),
                          lambda: audit.record(GUARD_BLOCK, "instantly:block-list", request.reason, None,
                                               dict(added=len(to_block), values=to_block)))
        if marking and (marking["log_ids"] or marking["dead"]):
            marking = _mark_bounced(params, conn, bounced, cutoff, write=True, audit=audit, reason=request.reason)

    pause_ids = [e["id"] for e in to_pause]
    result = dict(
        changed=bool(to_pause or to_block or (marking and (marking["log_ids"] or marking["dead"]))),
        campaigns=judged, over_threshold=[e["id"] for e in flagged], paused=pause_ids,
        cooldown_until=cooldown_until.isoformat() if cooldown_until else None,
        bounced_addresses=len(emails), block_list_added=to_block,
        log_rows_marked=len(marking["log_ids"]) if marking else 0,
        leads_dead=[d["lead_id"] for d in marking["dead"]] if marking else [],
        leads_kept=marking["kept"] if marking else [],
        api=client.figures())
    if want_diff:
        result["diff"] = dict(
            before=dict(campaigns={e["id"]: e["status_name"] for e in to_pause}, block_list_added=[],
                        log_rows_bounced=0, leads_dead=[]),
            after=dict(campaigns={cid: status_name(STATUS_PAUSED) for cid in pause_ids}, block_list_added=to_block,
                       log_rows_bounced=result["log_rows_marked"], leads_dead=result["leads_dead"]))
    return result


def _switch_campaigns(params, conn, client, audit, entries, state, action, reason, details=None):
    """Pause or activate each campaign, then one audit row for those Instantly accepted, also when a later one
    fails: a failure says which ones had already changed."""
    done = []

    def record():
        audit.record(action, "instantly:campaigns", reason, {e["id"]: e["status_name"] for e in done},
                     dict(details or {}, campaign_ids=[e["id"] for e in done]))

    what = "{0} Instantly campaign(s) were set {1}".format(len(entries), state)
    try:
        for entry in entries:
            client.request("POST", "/api/v2/campaigns/{0}/{1}".format(entry["id"], STATE_ENDPOINT[state]),
                           hints={404: "campaign {0} disappeared".format(entry["id"])})
            done.append(entry)
    except CerniqError as exc:
        if not done:
            raise
        _commit_audit(params, conn, what, record)
        raise CerniqError("{0}. Before this failure, {1} campaign(s) were set {2} (audited): {3}".format(
            exc.msg.rstrip("."), len(done), state, ", ".join(e["id"] for e in done)), changed=True) from exc
    if done:
        _commit_audit(params, conn, what, record)
    return done


def _guard_history(conn, params):
    """Campaigns the guard paused and has not resumed since, and the latest cool-down end, from the audit log."""
    with postgres_errors(params, conn), conn.cursor() as cur:
        cur.execute("SELECT action, after FROM " + contract.TABLE_AUDIT + " WHERE module = %s AND action = ANY(%s) "
                    "ORDER BY id", (GUARD_MODULE, [GUARD_PAUSE, GUARD_RESUME, GUARD_RESUME_VENDOR]))
        rows = cur.fetchall()
    conn.rollback()
    held, cooldown_until = {}, None
    for action, recorded in rows:
        after = recorded or {}
        for cid in after.get("campaign_ids") or []:
            if action == GUARD_PAUSE:
                held[cid] = True
            else:
                held.pop(cid, None)
        if action == GUARD_PAUSE and after.get("cooldown_until"):
            cooldown_until = after["cooldown_until"]
        # An operator's resume of a vendor-paused campaign releases that campaign only, never the cool-down.
        if action == GUARD_RESUME:
            cooldown_until = None
    return sorted(held), cooldown_until


def _guard_resume(params, conn, client, request, *, check_mode, want_diff, now):
    scope, reason, resume_vendor_paused = request.scope, request.reason, request.resume_vendor_paused
    held, cooldown_until = _guard_history(conn, params)
    if cooldown_until and not request.ignore_cooldown:
        until = datetime.fromisoformat(cooldown_until)
        if until > now:
            raise CerniqError("cold e-mail is in a cool-down until {0} ({1} from now): resume then, or set "
                              "ignore_cooldown=true once the investigation is done; nothing was changed".format(
                                  cooldown_until, _human(until - now)))
    candidates = [cid for cid in held if not scope or cid in scope]
    campaigns = {c["id"]: c for c in list_campaigns(client)} if candidates or scope else {}
    unknown = [cid for cid in scope if cid not in campaigns]
    if resume_vendor_paused and unknown:
        raise CerniqError("no campaign {0} in this Instantly workspace: check the ids (instantly_campaign_info "
                          "lists them); nothing was changed".format(", ".join(unknown)))
    to_resume, to_resume_vendor, vendor_paused, left_alone = [], [], [], []
    for cid in candidates:
        campaign = campaigns.get(cid)
        if campaign is None:
            left_alone.append(dict(id=cid, why="no longer in the workspace"))
        elif campaign.get("status") == STATUS_PAUSED:
            to_resume.append(describe(campaign))
        elif campaign.get("status") != STATUS_BOUNCE_PROTECT:
            left_alone.append(dict(id=cid, why="status is {0}, not paused".format(status_name(campaign.get("status")))))
    # Instantly's own pauses (bounce protect) among the campaigns in scope: a plain resume names them and leaves
    # them; resume_vendor_paused (named campaigns, a reason) resumes them.
    for cid in sorted(set(scope) | set(candidates)):
        campaign = campaigns.get(cid)
        if campaign is None or campaign.get("status") != STATUS_BOUNCE_PROTECT:
            continue
        vendor_paused.append(cid)
        if resume_vendor_paused and cid in scope:
            to_resume_vendor.append(describe(campaign))
        else:
            left_alone.append(dict(id=cid, why="paused by Instantly's bounce protect (status -2), not by the guard: "
                                               "after the investigation, resume_vendor_paused=true with the campaign "
                                               "named and a reason resumes it"))
    vendor_done = []
    if not check_mode and to_resume:
        audit = AuditTrail(conn, GUARD_MODULE, params.get("audit_actor"))
        _switch_campaigns(params, conn, client, audit, to_resume, "active", GUARD_RESUME, reason)
    if not check_mode and to_resume_vendor:
        vendor_done = _resume_vendor_paused(params, conn, client, to_resume_vendor, reason)
    ids = [e["id"] for e in to_resume]
    vendor_ids = [e["id"] for e in to_resume_vendor]
    result = dict(changed=bool(to_resume or to_resume_vendor), resumed=ids, resumed_vendor_paused=vendor_ids,
                  vendor_paused=vendor_paused, left_alone=left_alone, held_by_guard=held,
                  cooldown_until=cooldown_until, api=client.figures())
    if vendor_done:
        result["vendor_paused_after"] = {e["id"]: e["status_name"] for e in vendor_done}
    if want_diff:
        result["diff"] = dict(before=dict(campaigns={e["id"]: e["status_name"] for e in to_resume + to_resume_vendor}),
                              after=dict(campaigns={cid: status_name(STATUS_ACTIVE) for cid in ids + vendor_ids}))
    return result


def _resume_vendor_paused(params, conn, client, entries, reason):
    """Activate each campaign Instantly paused itself, read its status back, and write its audit row (status before
    and after, the actor, the reason) before the next one: a failure leaves every earlier resume audited."""
    audit = AuditTrail(conn, GUARD_MODULE, params.get("audit_actor"))
    done = []
    for entry in entries:
        path = "/api/v2/campaigns/{0}/{1}".format(entry["id"], STATE_ENDPOINT["active"])
        try:
            updated = client.request("POST", path, hints={404: "campaign {0} disappeared".format(entry["id"])})
        except CerniqError as exc:
            if not done:
                raise
            raise CerniqError("{0}. Before this failure, {1} vendor-paused campaign(s) were resumed (audited): "
                              "{2}".format(exc.msg.rstrip("."), len(done), ", ".join(e["id"] for e in done)),
                              changed=True) from exc
        if not (isinstance(updated, dict) and "status" in updated):
            updated = client.request("GET", "/api/v2/campaigns/{0}".format(entry["id"]))
        after = describe(updated)
        target = "instantly:campaign:" + entry["id"]
        before = dict(_state_view(entry), paused_by="instantly bounce protect")
        recorded = dict(_state_view(after), campaign_ids=[entry["id"]])
        _commit_audit(params, conn, "Instantly campaign {0} (bounce protect) was resumed".format(entry["id"]),
                      lambda t=target, b=before, a=recorded: audit.record(GUARD_RESUME_VENDOR, t, reason, b, a))
        done.append(after)
    return done


def _human(span):
    minutes = int(span.total_seconds() // 60)
    return "{0} h {1:02d} min".format(minutes // 60, minutes % 60)


# One statement finds (and in a real run changes) every log row and lead a set of bounced addresses touches:
# the log rows of those addresses that were sent but not known to have arrived, and the leads whose every e-mail
# address (their own and those of their recent log rows) has now bounced.
_MARK_TARGETS = """
WITH bounced AS (
    SELECT DISTINCT ON (b.email) b.email, b.campaign_id
      FROM unnest(%(emails)s::text[], %(campaigns)s::text[]) AS b(email, campaign_id)
     ORDER BY b.email, b.campaign_id
), log_hits AS (
    SELECT l.id, l.lead_id, l.status AS old_status, bounced.campaign_id
      FROM {log} AS l JOIN bounced ON lower(l.email) = bounced.email
     WHERE l.channel = %(email_channel)s AND l.direction = %(outbound)s AND l.status = ANY(%(markable)s)
       AND l.created_at >= %(cutoff)s
), candidates AS (
    SELECT j.lead_id FROM {leads} AS j JOIN bounced ON lower(j.email) = bounced.email
    UNION
    SELECT l.lead_id FROM {log} AS l JOIN bounced ON lower(l.email) = bounced.email
     WHERE l.channel = %(email_channel)s AND l.lead_id IS NOT NULL AND l.created_at >= %(cutoff)s
), addresses AS (
    SELECT j.lead_id, lower(j.email) AS email FROM {leads} AS j JOIN candidates USING (lead_id)
     WHERE j.email IS NOT NULL
    UNION
    SELECT l.lead_id, lower(l.email) FROM {log} AS l JOIN candidates USING (lead_id)
     WHERE l.channel = %(email_channel)s AND l.email IS NOT NULL AND l.created_at >= %(cutoff)s
), bounced_before AS (
    SELECT DISTINCT lower(l.email) AS email FROM {log} AS l
     WHERE l.channel = %(email_channel)s AND l.status = %(bounced_status)s AND l.created_at >= %(cutoff)s
       AND lower(l.email) IN (SELECT email FROM addresses)
), all_bounced AS (
    SELECT a.lead_id FROM addresses AS a
      LEFT JOIN bounced ON bounced.email = a.email
      LEFT JOIN bounced_before ON bounced_before.email = a.email
     GROUP BY a.lead_id
    HAVING bool_and(bounced.email IS NOT NULL OR bounced_before.email IS NOT NULL)
), lead_hits AS (
    SELECT j.lead_id, j.engagement_stage AS old_stage FROM {leads} AS j JOIN all_bounced USING (lead_id)
     WHERE j.engagement_stage = ANY(%(dead_stages)s)
), kept AS (
    SELECT j.lead_id, j.engagement_stage FROM {leads} AS j JOIN all_bounced USING (lead_id)
     WHERE NOT (j.engagement_stage = ANY(%(dead_stages)s)) AND j.engagement_stage <> %(dead)s
)"""

_MARK_WRITES = """, marked AS (
    UPDATE {log} AS l SET status = %(bounced_status)s, bounce_reason = %(reason_prefix)s || log_hits.campaign_id
      FROM log_hits WHERE l.id = log_hits.id
 RETURNING l.id
), dead AS (
    UPDATE {leads} AS j SET engagement_stage = %(dead)s, updated_at = now()
      FROM lead_hits WHERE j.lead_id = lead_hits.lead_id
 RETURNING j.lead_id
)"""

_MARK_SUMMARY = """
SELECT (SELECT coalesce(json_agg(id ORDER BY id), '[]'::json) FROM log_hits),
       (SELECT coalesce(json_object_agg(old_status, n), '{{}}'::json)
          FROM (SELECT old_status, count(*) AS n FROM log_hits GROUP BY old_status) AS by_status),
       (SELECT coalesce(json_agg(json_build_object('lead_id', lead_id, 'stage_before', old_stage)
                                 ORDER BY lead_id), '[]'::json) FROM lead_hits),
       (SELECT coalesce(json_agg(json_build_object('lead_id', lead_id, 'stage', engagement_stage)
                                 ORDER BY lead_id), '[]'::json) FROM kept)"""


def _mark_bounced(params, conn, bounced, cutoff, write, audit=None, reason=None):
    """Figures (and, with `write`, the change plus its audit row, in one transaction) for the bounced addresses."""
    if not bounced:
        return dict(log_ids=[], log_before={}, dead=[], kept=[])
    tables = dict(log=contract.TABLE_COMM_LOG, leads=contract.TABLE_LEADS)
    sql = (_MARK_TARGETS + (_MARK_WRITES if write else "") + _MARK_SUMMARY).format(**tables)
    args = dict(emails=[e for e, _cid in bounced], campaigns=[cid for _e, cid in bounced],
                email_channel=contract.CHANNEL_EMAIL, outbound=contract.DIRECTION_OUTBOUND,
                markable=list(BOUNCE_MARKABLE_LOG_STATUSES), bounced_status=contract.LOG_BOUNCED,
                cutoff=cutoff, dead_stages=list(BOUNCE_DEAD_STAGES), dead=contract.STAGE_DEAD,
                reason_prefix=BOUNCE_REASON_PREFIX)
    with postgres_errors(params, conn):
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        figures = dict(log_ids=row[0], log_before=row[1], dead=row[2], kept=row[3])
        if not write:
            conn.rollback()
            return figures
        audit.record(GUARD_MARK, "{0},{1}".format(contract.TABLE_COMM_LOG, contract.TABLE_LEADS), reason,
                     dict(log_statuses=figures["log_before"],
                          lead_stages={d["lead_id"]: d["stage_before"] for d in figures["dead"]}),
                     dict(log_ids=figures["log_ids"], log_status=contract.LOG_BOUNCED,
                          lead_ids_dead=[d["lead_id"] for d in figures["dead"]],
                          addresses=len({e for e, _cid in bounced})))
        conn.commit()
    return figures
