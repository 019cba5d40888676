// leakhound-expect: {"leak": false}
// Control, no leak: the same API as express-session.js with
// `saveUninitialized: false`: a session that was never modified is not
// stored, and this route only reads it, so the MemoryStore stays empty
// whatever the clients do with the cookie.
'use strict';
const express = require('express');
const session = require('express-session');
const { run } = require('./lib/harness');

const app = express();
app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false, cookie: { maxAge: 86_400_000 } }));

app.get('/api/items', (req, res) => {
  res.json({ items: [1, 2, 3], views: req.session.views || 0 });
});

run({
  handler: app,
  request: () => ({ path: '/api/items', headers: { 'user-agent': 'inventory-sync/2.1' } }),
  warmup: 300,
  perRound: 1500,
});
