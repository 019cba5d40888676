// A Node process with a big heap for bench/core-census.sh: MB (default 700) megabytes of
// `Item`s (a class instance with a string, a boxed number, a small array and a nested object),
// half of them also held by a Map under a string key, then it waits in native code
// (`execSync('sleep 3600')`), as an unresponsive app would, to be cored with gcore.
//
// usage: node --max-old-space-size=4096 bench/core-census-app.js [MB]
// Prints `ready <heapUsed bytes> <items>` on stdout once the heap is built.
'use strict';
const { execSync } = require('child_process');

const targetMb = Number(process.argv[2] || 700);

class Item {
  constructor(i) {
    this.id = i;
    this.name = `item-${i}-${'x'.repeat(i % 24)}`;
    this.score = i * 0.5 + 0.25;
    this.tags = [i % 7, i % 11, i % 13];
    this.meta = { created: i, owner: i % 1000 };
  }
}

const items = [];
const byName = new Map();
globalThis.keep = { items, byName };
let i = 0;
while (process.memoryUsage().heapUsed < targetMb * 1024 * 1024) {
  for (let k = 0; k < 10000; k++, i++) {
    const item = new Item(i);
    items.push(item);
    if (i % 2 === 0) byName.set(item.name, item);
  }
}
process.stdout.write(`ready ${process.memoryUsage().heapUsed} ${items.length}\n`);
execSync('sleep 3600');
