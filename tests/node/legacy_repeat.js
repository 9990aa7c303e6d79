// Registers the quota reset the way the runbook does (1.1 step 2, 3.2 step 4): a LEGACY repeatable job,
// `q.add('reset', {}, { repeat: { pattern: '0 0 * * *' } })`, with the real Node BullMQ v5 -- so the tests read the
// keys the platform has, not keys we wrote by hand. Prints one JSON line: {"event":"added","id":..,"repeatJobKey":..}.
// The password comes from CERNIQ_REDIS_PASSWORD (never argv).
'use strict';
const { Queue } = require('bullmq');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const keyPath = arg('queue', 'quota:guardian:reset');
  const parts = keyPath.split(':');
  const name = parts.pop();
  const prefix = ['bull', ...parts].join(':');
  const connection = { host: arg('host', '127.0.0.1'), port: Number(arg('port', '6379')), db: Number(arg('db', '2')),
    password: process.env.CERNIQ_REDIS_PASSWORD || undefined };
  const queue = new Queue(name, { connection, prefix });
  try {
    const repeat = { pattern: arg('pattern', '0 0 * * *') };
    if (arg('tz')) repeat.tz = arg('tz');
    const job = await queue.add(arg('job-name', 'reset'), {}, { repeat });
    const repeatables = await queue.getRepeatableJobs();
    process.stdout.write(`${JSON.stringify({ event: 'added', id: job.id, repeatJobKey: job.repeatJobKey,
      repeatables })}\n`);
  } finally {
    await queue.close();
  }
}

main().catch((err) => {
  process.stdout.write(`${JSON.stringify({ event: 'fatal', message: String(err && err.stack || err) })}\n`);
  process.exit(1);
});
