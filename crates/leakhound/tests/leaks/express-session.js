// leakhound-expect: {"leak": true, "owner": "sessions", "owner_class": "Object", "holder": "MemoryStore.sessions", "binding": "app", "binding_line": 15}
// Leak (npm express 5 + express-session 1.19): the app uses express-session
// with its default MemoryStore and `saveUninitialized: true`, and the API's
// clients (scripts, health checkers) never send the session cookie back. Every
// request creates a new session that the MemoryStore keeps (as a JSON string
// in its `sessions` object, keyed by session id) until it expires a day
// later: the process grows with the request count. express-session itself
// warns that MemoryStore "will leak memory" in production.
'use strict';
const express = require('express');
const session = require('express-session');
const { run } = require('./lib/harness');

// The API server.
const app = express();
app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: true, cookie: { maxAge: 86_400_000 } }));

app.locals.service = 'inventory';

app.get('/api/items', (req, res) => {
  req.session.views = (req.session.views || 0) + 1;
  req.session.client = req.get('user-agent');
  res.json({ service: app.locals.service, items: [1, 2, 3], views: req.session.views });
});

run({
  handler: app,
  request: () => ({ path: '/api/items', headers: { 'user-agent': 'inventory-sync/2.1' } }),
  warmup: 300,
  perRound: 1500,
});
