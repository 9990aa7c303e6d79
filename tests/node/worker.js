// A real BullMQ (Node) worker for the tests and the local stack, as the platform's workers run.
//
// Queues are given as key paths (`q:wa:phone_07`): Node BullMQ >= 5.12.12 refuses ':' in queue names, so the
// path splits into prefix `bull:q:wa` and name `phone_07` -- the same Redis keys the Python side writes.
// One JSON line per event on stdout: {"event":"ready"}, {"event":"completed", ...}, {"event":"exit", ...}.
'use strict';
const { Queue, Worker } = require('bullmq');

function parseArgs(argv) {
  // The password comes from the environment (CERNIQ_REDIS_PASSWORD), never from argv: a command line is readable
  // by every user in /proc/<pid>/cmdline. --password stays for tests that show what it exposes.
  const opts = { host: '127.0.0.1', port: 6379, db: 2, password: process.env.CERNIQ_REDIS_PASSWORD || undefined,
    queues: [], exitAfter: 0,
    timeout: 0, workMs: 0, concurrency: 1, prefix: 'bull', stampVersion: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const next = () => argv[++i];
    if (arg === '--host') opts.host = next();
    else if (arg === '--port') opts.port = Number(next());
    else if (arg === '--db') opts.db = Number(next());
    else if (arg === '--password') opts.password = next();
    else if (arg === '--queue') opts.queues.push(next());
    else if (arg === '--exit-after') opts.exitAfter = Number(next());
    else if (arg === '--timeout') opts.timeout = Number(next());
    else if (arg === '--work-ms') opts.workMs = Number(next());
    else if (arg === '--concurrency') opts.concurrency = Number(next());
    else if (arg === '--prefix') opts.prefix = next();
    else if (arg === '--no-stamp-version') opts.stampVersion = false;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!opts.queues.length) throw new Error('give at least one --queue');
  return opts;
}

function splitKeyPath(prefix, keyPath) {
  const parts = keyPath.split(':');
  const name = parts.pop();
  return { prefix: [prefix, ...parts].join(':'), name };
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const connection = { host: opts.host, port: opts.port, db: opts.db, password: opts.password };
  const workers = [];
  const queues = [];
  let completed = 0;
  let closing = false;

  const shutdown = async (reason) => {
    if (closing) return;
    closing = true;
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(queues.map((q) => q.close()));
    emit({ event: 'exit', reason, completed });
    process.exit(0);
  };

  for (const keyPath of opts.queues) {
    const { prefix, name } = splitKeyPath(opts.prefix, keyPath);
    if (opts.stampVersion) {
      // A Node Queue writes meta.version (bullmq:<x.y.z>), which the collection reads for its pairing check.
      const queue = new Queue(name, { connection, prefix });
      await queue.waitUntilReady();
      queues.push(queue);
    }
    const worker = new Worker(name, async (job) => {
      if (opts.workMs) await new Promise((resolve) => setTimeout(resolve, opts.workMs));
      // A job asked to fail its first attempt (tests of retrying failed jobs): it fails until it is retried.
      if (job.data && job.data.failFirst && !job.attemptsMade) throw new Error(`failing on purpose: ${job.data.failFirst}`);
      return { processedBy: 'node-bullmq', queue: keyPath };
    }, { connection, prefix, concurrency: opts.concurrency });
    worker.on('completed', (job) => {
      completed += 1;
      emit({ event: 'completed', queue: keyPath, id: job.id, name: job.name, data: job.data,
        timestamp: job.timestamp, delay: job.delay, processedOn: job.processedOn, finishedOn: job.finishedOn });
      if (opts.exitAfter && completed >= opts.exitAfter) shutdown('exit-after');
    });
    worker.on('failed', (job, err) => emit({ event: 'failed', queue: keyPath, id: job && job.id,
      reason: String(err && err.message), attemptsMade: job && job.attemptsMade }));
    worker.on('error', (err) => emit({ event: 'error', queue: keyPath, message: String(err && err.message) }));
    await worker.waitUntilReady();
    workers.push(worker);
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (opts.timeout) setTimeout(() => shutdown('timeout'), opts.timeout * 1000);
  emit({ event: 'ready', queues: opts.queues, pid: process.pid });
}

main().catch((err) => {
  emit({ event: 'fatal', message: String(err && err.stack) });
  process.exit(1);
});
