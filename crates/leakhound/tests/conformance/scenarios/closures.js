'use strict';
// Closures and contexts: many closures with their own contexts, closures that
// share one context, nested scopes, bound functions, suspended generators and
// async functions, functions from `new Function`/eval (other scripts), and
// class factories (many class objects from one source position).
const { run } = require('./lib/snapshot');

function counterFactory(start) {
  let count = start;
  const history = [start];
  return function increment() {
    count++;
    history.push(count);
    return count;
  };
}

function sharedContext(n) {
  const big = new Array(1000).fill(n);
  let calls = 0;
  const fns = [];
  for (let i = 0; i < 20; i++) {
    fns.push(() => big[i] + calls++);
  }
  return fns;
}

function nested(depth, payload) {
  const mine = { depth, payload };
  if (depth === 0) return () => mine;
  const inner = nested(depth - 1, payload + '.');
  return () => [mine, inner];
}

function* generator(n) {
  const local = { n, items: [] };
  for (let i = 0; ; i++) {
    local.items.push(i);
    yield local;
  }
}

async function waiter(promise, label) {
  const before = { label };
  await promise;
  return before;
}

function classFactory(i) {
  return class Made {
    constructor() {
      this.i = i;
    }
    method() {
      return i;
    }
  };
}

const sameNameA = function handler() {
  return 'a';
};
const sameNameB = function handler() {
  return 'b';
};

run((keep) => {
  keep.counters = Array.from({ length: 3000 }, (_, i) => counterFactory(i));
  keep.shared = Array.from({ length: 30 }, (_, i) => sharedContext(i));
  keep.nested = Array.from({ length: 50 }, (_, i) => nested(8, 'p' + i));
  keep.arrows = Array.from({ length: 500 }, (_, i) => (x) => x + i);
  keep.bound = Array.from({ length: 300 }, (_, i) => counterFactory.bind(null, i));
  keep.generators = Array.from({ length: 200 }, (_, i) => {
    const g = generator(i);
    g.next();
    g.next();
    return g;
  });
  const never = new Promise(() => {});
  keep.never = never;
  keep.waiting = Array.from({ length: 200 }, (_, i) => waiter(never, 'w' + i));
  keep.fromFunctionCtor = Array.from({ length: 100 }, (_, i) => new Function('a', `return a + ${i};`));
  // eslint-disable-next-line no-eval
  keep.fromEval = Array.from({ length: 50 }, (_, i) => (0, eval)(`(function evaluated${i % 5}() { return ${i}; })`));
  keep.classes = Array.from({ length: 60 }, (_, i) => classFactory(i));
  keep.instances = keep.classes.flatMap((C) => [new C(), new C()]);
  keep.handlers = [sameNameA, sameNameB];
  keep.methods = { m() {}, get g() { return 1; }, set g(v) {}, async am() {}, *gm() {} };
  keep.regexpHolder = Array.from({ length: 30 }, (_, i) => {
    const re = new RegExp(`^item-${i}-(\\d+)$`);
    return (s) => re.exec(s);
  });
});
