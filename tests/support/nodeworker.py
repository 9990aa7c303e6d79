"""A real Node.js BullMQ worker (npm bullmq, tests/node) as a child process, read line by line."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time

from tests.support.services import REPO_ROOT

WORKER_JS = REPO_ROOT / "tests" / "node" / "worker.js"


class NodeWorker:
    def __init__(self, redis_server, queues, db=2, exit_after=0, timeout=60, work_ms=0, stamp_version=True):
        cmd = ["node", str(WORKER_JS), "--host", redis_server.host, "--port", str(redis_server.port),
               "--db", str(db), "--timeout", str(timeout)]
        for name in queues:
            cmd += ["--queue", name]
        if exit_after:
            cmd += ["--exit-after", str(exit_after)]
        if work_ms:
            cmd += ["--work-ms", str(work_ms)]
        if not stamp_version:
            cmd.append("--no-stamp-version")
        self.cmd = cmd
        # The password through the environment, as the workers role passes it: never on a command line.
        self.env = dict(os.environ, CERNIQ_REDIS_PASSWORD=redis_server.password or "")
        self.process = None
        self.events = []
        self._lines = queue.Queue()

    def start(self, ready_timeout=20):
        self.process = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=self.env)
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for(lambda e: e.get("event") == "ready", ready_timeout, "worker ready")
        return self

    def _pump(self):
        for raw in self.process.stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "output", "text": line}
            self._lines.put(event)

    def _drain(self):
        while True:
            try:
                self.events.append(self._lines.get_nowait())
            except queue.Empty:
                return

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self._drain()
            for event in self.events[seen:]:
                if event.get("event") == "fatal":
                    raise RuntimeError("Node worker failed: {0}".format(event.get("message")))
                if predicate(event):
                    return event
            seen = len(self.events)
            time.sleep(0.05)
        raise AssertionError("timed out after {0}s waiting for {1}; events: {2}".format(
            timeout, what, self.events[-5:]))

    def completed(self):
        self._drain()
        return [e for e in self.events if e.get("event") == "completed"]

    def wait_completed(self, count, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.completed()
            if len(done) >= count:
                return done
            time.sleep(0.05)
        raise AssertionError("only {0} of {1} jobs completed in {2}s".format(len(self.completed()), count, timeout))

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._drain()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
