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

`compare` compares the last two records (the converge's and the idempotence step's) and fails naming each key,
table or marker that differs. What a scenario's second converge legitimately changes (a clock-driven value) is
listed in the scenario's `idempotence_ignore.yml`, each entry with its reason:

    - part: redis2                    # optional: redisN, postgres, postgres:<database>; any part when left out
      name: "bull:*:stalled-check"    # fnmatch pattern on the key, table or "(marker)"
      reason: a running worker re-sets its stalled-check lock every stalledInterval, by the clock
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import time
from pathlib import Path

import yaml

from tests.support.snapshots import services_state, state_differences

RECORDS = "converge-state"
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
        if not isinstance(entry, dict) or not entry.get("name") or not str(entry.get("reason", "")).strip():
            raise SystemExit("{0}: every entry needs a name (pattern) and a reason: {1!r}".format(path, entry))
    return entries


def ignored_by(entries, part, name):
    """The entry that excludes `name` of `part`, or None."""
    for entry in entries:
        if entry.get("part", part) == part and fnmatch.fnmatchcase(name, entry["name"]):
            return entry
    return None


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
    last = plain(services_state(params, redis_dbs="all", every_database=True))
    for reads in range(2, REST_READS + 1):
        time.sleep(REST_PAUSE)
        state = plain(services_state(params, redis_dbs="all", every_database=True))
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
    for part, name, reason in dropped:
        print("not compared: {0} {1} ({2})".format(part, name, reason))
    differences = state_differences(before, after)
    if differences:
        print("the second converge (record {0}) changed state that the first (record {1}) left:".format(second, first))
        for line in differences:
            print("  " + line)
        return 1
    keys = sum(len(content) for part, content in after.items() if part.startswith("redis"))
    tables = sum(len(content) for part, content in after.items() if part.startswith("postgres"))
    print("converge {0} and {1} left the same state, byte for byte: {2} Redis keys in {3}, {4} table figures and "
          "markers in {5}".format(first, second, keys, ", ".join(p for p in sorted(after) if p.startswith("redis")),
                                  tables, ", ".join(p for p in sorted(after) if p.startswith("postgres"))))
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
