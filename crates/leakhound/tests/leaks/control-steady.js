// leakhound-expect: {"leak": false}
// Control, no leak: steady traffic on GET /search. Every request parses its
// query, builds temporary arrays, objects and strings, renders a JSON answer
// and returns; nothing outlives the request, so the heap is flat from
// snapshot to snapshot.
'use strict';
const { run } = require('./lib/harness');

class SearchHit {
  constructor(rank, title) {
    this.rank = rank;
    this.title = title;
    this.snippet = `… ${title.toLowerCase()} …`;
  }
}

const CATALOG = Array.from({ length: 64 }, (_, i) => `Product ${i} ${i % 2 ? 'blue' : 'red'} widget`);

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const words = (url.searchParams.get('q') || '').split(/\s+/).filter(Boolean);
  const hits = [];
  for (const title of CATALOG) {
    if (words.every((w) => title.includes(w))) hits.push(new SearchHit(hits.length + 1, title));
    if (hits.length === 10) break;
  }
  const body = JSON.stringify({ q: words, total: hits.length, hits, page: Number(url.searchParams.get('page')) });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

run({
  handler,
  request: (i) => `/search?q=${i % 2 ? 'blue' : 'red'}+widget+${i % 10}&page=${i}`,
  warmup: 1500,
  perRound: 1500,
});
