// A service that leaks in hundreds of ways at once, for the HTML report's size bound: every
// request to /leak adds an instance of each of 400 classes to that class's own Map, appends to
// a linked list (so the retaining paths grow long), and keeps objects of a class whose name,
// and the property that holds them, are thousands of characters long.
'use strict';
const http = require('http');

const CLASSES = 400;
const classes = Array.from({ length: CLASSES }, (_, i) => {
  const name = `Leaky${String(i).padStart(3, '0')}`;
  return { [name]: class { constructor(n) { this.n = n; this.note = `request ${n}`; } } }[name];
});
const maps = classes.map(() => new Map());

const longName = 'VeryLong'.repeat(700);
// Each holds 20 kB, so this cluster ranks first and its name is on the page.
const Long = { [longName]: class { constructor(n) { this.n = n; this.blob = 'x'.repeat(20000) + n; } } }[longName];
const holder = { ['held' + 'ByAPropertyWithAnEndlessName'.repeat(150)]: [] };

class ListNode { constructor(payload) { this.next = null; this.payload = payload; } }
class Tail { constructor(n) { this.n = n; this.data = new Array(500).fill(n); } }
// Held from the global object by its head: the path to each new node runs through every older one.
const list = new ListNode(null);
globalThis.requestLog = list;
let last = list;

let requests = 0;
http.createServer((req, res) => {
  if (req.url === '/leak') {
    requests += 1;
    for (let i = 0; i < CLASSES; i++) maps[i].set(requests, new classes[i](requests));
    Object.values(holder)[0].push(new Long(requests));
    last.next = new ListNode(new Tail(requests));
    last = last.next;
  }
  res.end('ok');
}).listen(0, '127.0.0.1');
