// leakhound-expect: {"leak": true, "class": "UserProfile", "owner": "profiles", "owner_class": "Object", "holder": "profiles", "binding": "profileCache", "binding_line": 38, "holder_line": 22}
// Leak: GET /profile looks the user's profile up in a memoizing cache built
// by makeCache(). The cache's store is the closure variable `profiles` (a
// plain object used as a dictionary), reachable only through the closures
// get/size of the object makeCache returned. The cache key wrongly includes
// the per-request session id, so every request misses and adds a new
// UserProfile, and nothing is ever evicted.
'use strict';
const { run } = require('./lib/harness');

class UserProfile {
  constructor(userId, session) {
    this.userId = userId;
    this.session = session;
    this.displayName = `User ${userId}`;
    this.roles = ['reader', userId.endsWith('0') ? 'admin' : 'editor'];
    this.loadedAt = new Date();
  }
}

function makeCache(load) {
  const profiles = {};
  return {
    get(key, ...args) {
      let value = profiles[key];
      if (value === undefined) {
        value = load(...args);
        profiles[key] = value;
      }
      return value;
    },
    size() {
      return Object.keys(profiles).length;
    },
  };
}

const profileCache = makeCache((userId, session) => new UserProfile(userId, session));

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const userId = url.searchParams.get('user');
  const session = req.headers['x-session'];
  const profile = profileCache.get(`${userId}:${session}`, userId, session); // BUG: key per session
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ name: profile.displayName, roles: profile.roles }));
}

run({
  handler,
  request: (i) => ({ path: `/profile?user=u${i % 50}`, headers: { 'x-session': 'sess-' + i } }),
  warmup: 300,
  perRound: 1500,
});
