"""The idempotence proof of every Molecule scenario: the platform's state after each converge, compared byte for byte.

    python -m tests.support.molecule_state record --dir EPHEMERAL_DIR --params PARAMS_JSON|- [--ignore FILE]
    python -m tests.support.molecule_state compare --dir EPHEMERAL_DIR [--ignore FILE]

Molecule's idempotence step only counts `changed` flags: a second converge that rewrites a key and reports
`changed: false` passes it. extensions/molecule/shared/idempotence_state.yml runs `record` at the end of every
converge (Molecule's converge and idempotence steps run the same converge.yml) and `compare` in verify.

`record` takes services_state() of tests/support/snapshots.py (every Redis key's DUMP and absolute expiry in every db
that holds a key, the contract tables' row counts and checksums and the marker of every database the user may
connect to), read until two reads in a row agree (a worker still finishing a job, a recovery's background work), and
writes it to DIR/converge-state/<n>.json, n = 1, 2, ... (`molecule destroy` prunes the directory). PARAMS_JSON is the
collection's module parameters for the scenario's services (the play's cerniq_redis_defaults and
cerniq_postgres_defaults), a file or `-` for standard input (the play's way: no password on a command line; its task
is no_log, so a failure is also written to DIR/converge-state/record-error.txt, without the parameters).

A record also holds the part `audit rows`: each ops_audit_log row of the platform's database by id, as
(module, action, md5 of the row), so a second converge's audit row is named, not only the table's checksum.

`compare` compares the last two records (the converge's and the idempotence step's) and fails naming each key,
table, marker or audit row that differs. What a scenario's second converge legitimately changes is listed in the
scenario's `idempotence_ignore.yml`, each entry with its reason:

    - part: redis2                    # optional: redisN, postgres, postgres:<database>, audit rows; any when left out
      name: "bull:*:stalled-check"    # fnmatch pattern on the key, table, "(marker)" or audit row id
      reason: a running worker re-sets its stalled-check lock every stalledInterval, by the clock
    - new_audit_rows: {module: comm_log_archive, action: comm_log_archive}
      reason: the archive's run summary, written by every run by design

A `new_audit_rows` entry lets the second converge add audit rows of that module and action (and only add them: the
converge's rows must stay byte for byte); ops_audit_log's table figures are then left to the `audit rows` part.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_AUDIT
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import pin_session, snapshot_cursor
from tests.support.snapshots import services_state, state_differences

RECORDS = "converge-state"
AUDIT_ROWS = "audit rows"
# What AnsibleModule's argument spec would fill in: the module_defaults dicts carry only what the inventory sets.
PARAM_DEFAULTS = dict(redis_username=None, redis_password=None, redis_tls=False, redis_tls_ca_cert=None,
                      redis_db=0, bullmq_db=2, db_password=None, db_ssl_rootcert=None, db_connect_timeout=5)
# A read of a state still moving (a worker completing a job the converge queued) is taken again, up to this many times.
REST_READS = 60
REST_PAUSE = 0.5


def load_ignores(path):
    """The scenario's idempotence_ignore.yml entries ([] when it has none); an entry without a reason is refused."""
    if not path or not Path(path).exists():
        return []
    entries = yaml.safe_load(Path(path).read_text()) or []
    for entry in entries:
        named = isinstance(entry, dict) and (entry.get("name") or isinstance(entry.get("new_audit_rows"), dict))
        if not named or not str(entry.get("reason", "")).strip():
            raise SystemExit("{0}: every entry needs a name (pattern) or new_audit_rows, and a reason: {1!r}".format(
                path, entry))
    return entries


def ignored_by(entries, part, name):
    """The entry that excludes `name` of `part`, or None."""
    for entry in entries:
        if entry.get("name") and entry.get("part", part) == part and fnmatch.fnmatchcase(name, entry["name"]):
            return entry
    return None


def audit_rows(params):
    """{id: [module, action, md5 of the row]} of ops_audit_log in the platform's database ({} without the table)."""
    with snapshot_cursor(params, require=()) as cur:
        pin_session(cur)
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE_AUDIT,))
        if not cur.fetchone()[0]:
            return {}
        cur.execute("SELECT t.id, t.module, t.action, md5(t::text) FROM " + TABLE_AUDIT + " AS t ORDER BY t.id")
        return {str(row[0]): [row[1], row[2], row[3]] for row in cur.fetchall()}


def read_state(params):
    """services_state() of every Redis db and database, plus the audit rows, as JSON values."""
    state = plain(services_state(params, redis_dbs="all", every_database=True))
    state[AUDIT_ROWS] = audit_rows(params)
    return state


def allow_new_audit_rows(before, after, entries):
    """Both states with the audit rows that a `new_audit_rows` entry allows taken out of `after` (and ops_audit_log's
    figures out of both: the rows stand for them), and the rows taken out with their reasons."""
    allowing = [entry for entry in entries if entry.get("new_audit_rows")]
    if not allowing:
        return before, after, []
    before, after = dict(before), dict(after)
    for state in (before, after):
        if "postgres" in state:
            state["postgres"] = {name: value for name, value in state["postgres"].items() if name != TABLE_AUDIT}
    kept, allowed = {}, []
    for row_id, row in after.get(AUDIT_ROWS, {}).items():
        entry = next((e for e in allowing if row_id not in before.get(AUDIT_ROWS, {})
                      and [e["new_audit_rows"].get("module"), e["new_audit_rows"].get("action")] == row[:2]), None)
        if entry is None:
            kept[row_id] = row
        else:
            allowed.append((row_id, row, entry["reason"]))
    after[AUDIT_ROWS] = kept
    return before, after, allowed


def plain(state):
    """services_state() as JSON values, one to one: bytes as latin-1 text (a code point per byte), tuples as lists."""
    if isinstance(state, dict):
        return {_text(key): plain(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return [plain(value) for value in state]
    if isinstance(state, bytes):
        return state.decode("latin-1")
    return state


def _text(key):
    return key.decode("latin-1") if isinstance(key, bytes) else str(key)


def without_ignored(state, entries):
    """The state less what the scenario's ignore entries name, and the names left out, per entry."""
    kept, dropped = {}, []
    for part, content in state.items():
        kept[part] = {}
        for name, value in content.items():
            entry = ignored_by(entries, part, name)
            if entry is None:
                kept[part][name] = value
            else:
                dropped.append((part, name, entry["reason"]))
    return kept, dropped


def read_at_rest(params, entries):
    """services_state() read until two reads in a row agree (ignored entries aside); the last read and the count."""
    last = read_state(params)
    for reads in range(2, REST_READS + 1):
        time.sleep(REST_PAUSE)
        state = read_state(params)
        if without_ignored(state, entries)[0] == without_ignored(last, entries)[0]:
            return state, reads
        last = state
    return last, REST_READS


def record(args):
    out = Path(args.dir) / RECORDS
    out.mkdir(parents=True, exist_ok=True)
    errors = out / "record-error.txt"
    errors.unlink(missing_ok=True)
    try:
        text = sys.stdin.read() if args.params == "-" else Path(args.params).read_text()
        params = dict(PARAM_DEFAULTS, **json.loads(text))
        state, reads = read_at_rest(params, load_ignores(args.ignore))
    except (Exception, SystemExit) as exc:  # the play's task is no_log: say why where its rescue reads it
        errors.write_text("recording the state after converge failed: {0}: {1}\n".format(type(exc).__name__, exc))
        raise
    number = len(list(out.glob("[0-9]*.json"))) + 1
    (out / "{0}.json".format(number)).write_text(json.dumps(state, sort_keys=True))
    keys = sum(len(content) for part, content in state.items() if part.startswith("redis"))
    databases = [part for part in state if part.startswith("postgres")]
    print("converge {0}: state recorded ({1} Redis keys, {2} database(s), at rest after {3} reads) in {4}".format(
        number, keys, len(databases), reads, out / "{0}.json".format(number)))
    return 0


def compare(args):
    out = Path(args.dir) / RECORDS
    numbers = sorted(int(path.stem) for path in out.glob("[0-9]*.json")) if out.exists() else []
    if len(numbers) < 2:
        print("{0} converge(s) recorded in {1}: the idempotence step (a second converge) must run before verify, and "
              "every converge.yml must end with shared/idempotence_state.yml".format(len(numbers), out))
        return 1
    first, second = numbers[-2], numbers[-1]
    entries = load_ignores(args.ignore)
    before, dropped = without_ignored(json.loads((out / "{0}.json".format(first)).read_text()), entries)
    after = without_ignored(json.loads((out / "{0}.json".format(second)).read_text()), entries)[0]
    before, after, allowed = allow_new_audit_rows(before, after, entries)
    for part, name, reason in dropped:
        print("not compared: {0} {1} ({2})".format(part, name, reason))
    for row_id, row, reason in allowed:
        print("allowed: new audit row {0} ({1}/{2}) ({3})".format(row_id, row[0], row[1], reason))
    differences = state_differences(before, after)
    if differences:
        print("the second converge (record {0}) changed state that the first (record {1}) left:".format(second, first))
        for line in differences:
            print("  " + line)
        return 1
    keys = sum(len(content) for part, content in after.items() if part.startswith("redis"))
    tables = sum(len(content) for part, content in after.items() if part.startswith("postgres"))
    print("converge {0} and {1} left the same state, byte for byte: {2} Redis keys in {3}, {4} table figures and "
          "markers in {5}, {6} audit rows".format(
              first, second, keys, ", ".join(p for p in sorted(after) if p.startswith("redis")), tables,
              ", ".join(p for p in sorted(after) if p.startswith("postgres")), len(after.get(AUDIT_ROWS, {}))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.support.molecule_state",
                                     description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    record_parser = sub.add_parser("record", help="record the state after a converge")
    record_parser.add_argument("--dir", required=True, help="the scenario's ephemeral directory")
    record_parser.add_argument("--params", required=True, help="a JSON file of module parameters (0600)")
    record_parser.add_argument("--ignore", help="the scenario's idempotence_ignore.yml")
    record_parser.set_defaults(func=record)
    compare_parser = sub.add_parser("compare", help="compare the last two records")
    compare_parser.add_argument("--dir", required=True)
    compare_parser.add_argument("--ignore")
    compare_parser.set_defaults(func=compare)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
