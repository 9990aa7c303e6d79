// The baseline of bench/job_ops.py: what bull-board's "retry all" / "promote all" and the runbook's Node shell do,
// BullMQ's own Queue.retryJobs({state: 'failed'}) and Queue.promoteJobs() (their default 1,000 jobs a script call),
// with the real Node BullMQ v5 of tests/node (NODE_PATH). Prints one JSON line: {"event":"done","ms":..}, the time
// of the call alone (connected before the clock starts). The password comes from CERNIQ_REDIS_PASSWORD (never argv).
'use strict';
const { Queue } = require('bullmq');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const keyPath = arg('queue');
  const parts = keyPath.split(':');
  const name = parts.pop();
  const prefix = ['bull', ...parts].join(':');
  const connection = { host: arg('host', '127.0.0.1'), port: Number(arg('port', '6379')), db: Number(arg('db', '2')),
    password: process.env.CERNIQ_REDIS_PASSWORD || undefined };
  const queue = new Queue(name, { connection, prefix });
  try {
    await queue.waitUntilReady();
    const started = process.hrtime.bigint();
    if (arg('op') === 'retry') {
      await queue.retryJobs({ state: 'failed' });
    } else {
      await queue.promoteJobs();
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(`${JSON.stringify({ event: 'done', ms })}\n`);
  } finally {
    await queue.close();
  }
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ event: 'fatal', message: String(err && err.stack || err) })}\n`);
  process.exit(1);
});
