"""Issue 11, secrets and personal data: transport defaults, worker credentials, report/backup file modes, the
TimelinesAI webhook URL, the backup root. Each test tries the leak or the unsafe setting and shows it did not happen.
"""

from __future__ import annotations

import time

from tests.support.playbooks import run_playbook

TRANSPORT_PLAY = """
- name: What the platform role hands to the modules
  hosts: db
  gather_facts: false
  module_defaults:
    group/cerniq.outreach.all: "{{ cerniq_module_defaults }}"
  roles:
    - role: cerniq.outreach.platform
  tasks:
    - name: Transport settings
      ansible.builtin.debug:
        msg:
          redis_tls: "{{ cerniq_module_defaults.redis_tls }}"
          db_sslmode: "{{ cerniq_module_defaults.db_sslmode }}"
          redis_tls_ca_cert: "{{ cerniq_module_defaults.redis_tls_ca_cert | default('unset') }}"
          db_ssl_rootcert: "{{ cerniq_module_defaults.db_ssl_rootcert | default('unset') }}"

    - name: Read the platform
      cerniq.outreach.bullmq_queue_info:
        queues: [q:wa:phone_01]
        redis_timeout: 2
"""


def _transport_play(tmp_path, inventory):
    playbook = tmp_path / "transport.yml"
    playbook.write_text(TRANSPORT_PLAY)
    return run_playbook(playbook, inventory)


def test_role_defaults_are_tls_and_verify_full_and_a_plaintext_redis_fails_with_one_message(platform, tmp_path):
    inventory = platform.inventory()
    variables = inventory["all"]["vars"]
    # A production inventory that forgets the transport settings: the test lab's explicit opt-outs removed.
    del variables["cerniq_redis_tls"], variables["cerniq_db_sslmode"]
    started = time.monotonic()
    run = _transport_play(tmp_path, inventory)
    elapsed = time.monotonic() - started
    shown = run.result("Transport settings")["msg"]
    assert shown["redis_tls"] in (True, "True") and shown["db_sslmode"] == "verify-full", shown
    # No CA file given: the option is omitted (the system's CA store, libpq's ~/.postgresql/root.crt).
    assert "redis_tls_ca_cert" not in shown and "db_ssl_rootcert" not in shown
    failed = run.result("Read the platform")
    assert run.rc != 0 and failed["_event"] == "runner_on_failed"
    message = failed["msg"]
    assert "did not complete a TLS handshake within 2s" in message and "cerniq_redis_tls" in message, message
    assert "Traceback" not in message and platform.redis.password not in run.stdout
    assert elapsed < 60, "a plaintext server must fail fast, not hang on the handshake"


def test_ca_file_variables_reach_the_modules_and_the_lab_opts_out_explicitly(platform, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not read: the opt-out below skips TLS\n")
    inventory = platform.inventory(cerniq_redis_tls_ca_cert=str(ca_file), cerniq_db_ssl_rootcert=str(ca_file))
    run = _transport_play(tmp_path, inventory)
    assert run.rc == 0, run.stdout[-3000:]
    shown = run.result("Transport settings")["msg"]
    assert shown["redis_tls"] in (False, "False") and shown["db_sslmode"] == "disable"
    assert shown["redis_tls_ca_cert"] == str(ca_file) and shown["db_ssl_rootcert"] == str(ca_file)
