// leakhound-expect: {"leak": true, "class": "Timeout", "owner": "timerListMap[60000]", "owner_class": "TimersList", "holder": "timerListMap[60000]", "binding": null}
// Leak: GET /jobs creates a PendingJob and starts a 60 s setInterval that
// would poll the job's status; the interval is never cleared (its handle is
// not even kept). Each interval is a Timeout object whose _onTimeout closure
// holds the PendingJob. Node keeps all timers of one duration in one
// TimersList, a circular doubly linked list (_idleNext/_idlePrev), stored in
// its internal object timerListMap under the key 60000 (an element edge),
// so the TimersList dominates every leaked Timeout and PendingJob. (unref()
// only lets the process exit; the timers stay in the list.)
'use strict';
const { run } = require('./lib/harness');

const POLL_MS = 60_000;

class PendingJob {
  constructor(id, kind) {
    this.id = id;
    this.kind = kind;
    this.payload = JSON.stringify({ id, kind, args: ['--since', '2024-01-01', '--format', 'csv'] });
    this.state = 'queued';
    this.polls = 0;
  }
}

function touch(job) {
  job.polls++;
}

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const job = new PendingJob(url.searchParams.get('id'), url.searchParams.get('kind'));
  setInterval(() => touch(job), POLL_MS).unref(); // BUG: never cleared
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: job.id, state: job.state }));
}

run({
  handler,
  request: (i) => `/jobs?id=${i}&kind=${i % 3 === 0 ? 'export' : 'import'}`,
  warmup: 300,
  perRound: 1500,
});
