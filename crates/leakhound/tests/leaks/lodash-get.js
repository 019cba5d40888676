// leakhound-expect: {"leak": true, "class": "Array", "owner": "__data__", "owner_class": "Object", "holder": "Hash.__data__", "binding": "get", "binding_line": 13}
// Leak (npm lodash.get 4.4.2): the feature-flag lookup reads a nested setting
// with a path string built from the tenant id. lodash.get parses each path
// string once and memoizes the result in `stringToPath`'s cache, a
// MapCache that is never cleared in this standalone package (lodash itself
// caps it at 500): with one path per tenant, the cache grows with the number
// of tenants seen.
'use strict';
const { run } = require('./lib/harness');

// Nested settings lookups: get(settings, 'tenants.acme.flags.beta').

const get = require('lodash.get');

const settings = { tenants: {}, defaults: { flags: { beta: false, export: true } } };

function handler(req, res) {
  const tenant = req.headers['x-tenant'];
  const beta = get(settings, `tenants.${tenant}.flags.beta`, settings.defaults.flags.beta);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ tenant, beta }));
}

run({
  handler,
  request: (i) => ({ path: '/flags', headers: { 'x-tenant': `tenant-${i}` } }),
  warmup: 300,
  perRound: 1500,
});
