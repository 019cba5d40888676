'use strict';
// node drive.js OUTDIR DIST: books orders through DIST/server.js's handler with real requests
// and writes a baseline, a target and a final snapshot into OUTDIR (with tests/leaks' harness).
const path = require('node:path');
const { handle } = require(path.resolve(process.argv[3], 'server.js'));
const { run } = require('../leaks/lib/harness');

run({ handler: handle, request: (i) => `/order?i=${i}`, warmup: 100, perRound: 300 });
