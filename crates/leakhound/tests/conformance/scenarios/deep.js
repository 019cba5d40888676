'use strict';
// Deep structures that break recursive algorithms: a 100k-deep linked list,
// a deep closure chain, a deep array chain, a long ring and a deep tree.
const { run } = require('./lib/snapshot');

class ListNode {
  constructor(value, next) {
    this.value = value;
    this.next = next;
  }
}

class Leaf {
  constructor(depth) {
    this.depth = depth;
    this.left = null;
    this.right = null;
  }
}

function tree(depth) {
  const n = new Leaf(depth);
  if (depth > 0) {
    n.left = tree(depth - 1);
    n.right = tree(depth - 1);
  }
  return n;
}

run((keep) => {
  let list = null;
  for (let i = 0; i < 100000; i++) list = new ListNode(i, list);
  keep.list = list;

  let fn = () => 0;
  for (let i = 0; i < 20000; i++) {
    const prev = fn;
    fn = () => prev() + 1;
  }
  keep.closureChain = fn;

  let arr = [];
  for (let i = 0; i < 30000; i++) arr = [arr];
  keep.arrayChain = arr;

  // A 30k-deep chain whose tail points back to the head (one big cycle).
  const head = { ring: 0, next: null };
  let cur = head;
  for (let i = 1; i < 30000; i++) {
    cur.next = { ring: i, next: null };
    cur = cur.next;
  }
  cur.next = head;
  keep.ring = head;

  keep.tree = tree(14); // 32767 Leafs

  // The same deep list also retained from a second place, deep inside.
  let p = keep.list;
  for (let i = 0; i < 50000; i++) p = p.next;
  keep.middleOfList = p;
});
