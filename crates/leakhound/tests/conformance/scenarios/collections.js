'use strict';
// Maps, Sets, WeakMaps (ephemerons; values reachable only through a WeakMap),
// WeakSets, WeakRefs (targets alive or only weakly held), FinalizationRegistry
// and cycles (self edges, rings, mutual references).
const { run, nextTask } = require('./lib/snapshot');

class Key {
  constructor(i) {
    this.i = i;
  }
}
class WeakValue {
  constructor(i) {
    this.i = i;
    this.blob = new Array(8).fill(i);
  }
}
class Target {
  constructor(i) {
    this.i = i;
    this.data = { i };
  }
}
class RingNode {
  constructor(i) {
    this.i = i;
    this.next = null;
  }
}

run(async (keep) => {
  // Maps and Sets.
  keep.stringMap = new Map();
  for (let i = 0; i < 5000; i++) keep.stringMap.set('key-' + i, { i });
  keep.objectMap = new Map();
  for (let i = 0; i < 2000; i++) keep.objectMap.set(new Key(i), 'value-' + i);
  keep.nestedMap = new Map(Array.from({ length: 50 }, (_, i) => [i, new Map([[i, new Set([i])]])]));
  keep.objectSet = new Set(Array.from({ length: 3000 }, (_, i) => ({ member: i })));
  keep.stringSet = new Set(Array.from({ length: 2000 }, (_, i) => 'member-' + i));
  keep.emptyMap = new Map();
  keep.emptySet = new Set();

  // WeakMaps: keys are held strongly, values only through the WeakMap.
  keep.weakKeys = Array.from({ length: 3000 }, (_, i) => new Key(-i));
  keep.weakMap = new WeakMap();
  for (const k of keep.weakKeys) keep.weakMap.set(k, new WeakValue(k.i));
  // The same key in a second WeakMap, with the value also held strongly.
  keep.weakMap2 = new WeakMap();
  keep.strongValues = [];
  for (let i = 0; i < 500; i++) {
    const v = new WeakValue(i);
    keep.weakMap2.set(keep.weakKeys[i], v);
    keep.strongValues.push(v);
  }
  // A key reachable only through another WeakMap's value (ephemeron chain).
  keep.chainMap = new WeakMap();
  const head = new Key('head');
  keep.chainHead = head;
  let k = head;
  for (let i = 0; i < 200; i++) {
    const next = new Key('chain' + i);
    keep.chainMap.set(k, { next });
    k = next;
  }
  // A WeakMap held only through a closure, and a cycle through a value.
  const cycleKey = new Key('cycle');
  const hidden = new WeakMap();
  hidden.set(cycleKey, { back: cycleKey, payload: 'x'.repeat(100) });
  keep.weakMapClosure = () => hidden.get(cycleKey);
  keep.weakSet = new WeakSet(keep.weakKeys.slice(0, 1000));

  // WeakRefs and FinalizationRegistry.
  keep.targets = Array.from({ length: 500 }, (_, i) => new Target(i));
  keep.refsToLive = keep.targets.map((t) => new WeakRef(t));
  keep.refsToDead = Array.from({ length: 300 }, (_, i) => new WeakRef(new Target(-i)));
  keep.registry = new FinalizationRegistry(() => {});
  for (const t of keep.targets.slice(0, 200)) keep.registry.register(t, t.i, t.data);
  keep.registry.register(new Target('gone'), 'gone');

  await nextTask(); // earlier only-weakly-held targets may now be collected

  // WeakRefs created in the snapshot's own turn keep their targets alive.
  keep.refsThisTurn = Array.from({ length: 300 }, (_, i) => new WeakRef(new Target(1e6 + i)));

  // Cycles.
  keep.selfRefs = Array.from({ length: 300 }, (_, i) => {
    const o = { i };
    o.self = o;
    return o;
  });
  const first = new RingNode(0);
  let cur = first;
  for (let i = 1; i < 5000; i++) {
    cur.next = new RingNode(i);
    cur = cur.next;
  }
  cur.next = first;
  keep.ring = first;
  keep.pairs = Array.from({ length: 500 }, (_, i) => {
    const a = { side: 'a', i };
    const b = { side: 'b', i, a };
    a.b = b;
    return a;
  });
  // A cycle reachable only from a WeakMap value.
  const cycleA = { name: 'cycleA' };
  const cycleB = { name: 'cycleB', cycleA };
  cycleA.cycleB = cycleB;
  keep.weakMap.set(keep.weakKeys[0], cycleA);
});
