// Whole-process cost of the native tracker on an HTTP service, without leakhound in the loop:
// starts bench/native-http-server.js under CONFIG, sends 30,000 requests (8 in flight, keep-alive,
// Node's own http client), stops it. Time two configurations against each other as whole
// processes, alternating (A B A B …), e.g. with `/usr/bin/time -f "%e %U %S"`:
//   node bench/native-http-load.js plain
//   node bench/native-http-load.js tracker512k     (also tracker64k, naming, noinline; combine with +)
// Build the tracker first: cargo build --release.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const config = process.argv[2] || 'plain';
const root = path.join(__dirname, '..');
const env = { ...process.env };
const flags = [];
if (config.includes('tracker')) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakhound-bench-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  Object.assign(env, {
    LD_PRELOAD: path.join(root, 'target/release/libleakhound_preload.so'),
    LEAKHOUND_NATIVE_DIR: dir,
    LEAKHOUND_NATIVE_INTERVAL: config.includes('64k') ? '65536' : '524288',
  });
}
if (config.includes('naming')) flags.push('--perf-basic-prof-only-functions', '--interpreted-frames-native-stack');
if (config.includes('noinline')) flags.push('--no-turbo-inlining', '--no-maglev-inlining');

const server = spawn(process.execPath, [...flags, path.join(__dirname, 'native-http-server.js'), '0'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
server.stdout.once('data', (line) => {
  const port = Number(String(line).match(/(\d+)/)[1]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let left = 30000;
  let inFlight = 0;
  const next = () => {
    if (left === 0) {
      if (inFlight === 0) {
        server.kill();
        agent.destroy();
      }
      return;
    }
    left--;
    inFlight++;
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        next();
      });
    });
  };
  for (let i = 0; i < 8; i++) next();
});
