'use strict';
// User classes and constructor functions, grouped by location: the same class
// name defined in several files/places, a class literally named `Object`
// (location + interface inference), class names that DevTools rewrites
// (`<div id=…>` → `<div>`, `Detached <…>`), names with commas/quotes/braces,
// hierarchies, and instances dominated by instances of the same class.
const { run, keep } = require('./lib/snapshot');
const A = require('./lib/widget_a');
const B = require('./lib/widget_b');

class Widget {
  // A third CommonJS `Widget`, in this file.
  constructor(i) {
    this.id = i;
  }
}

// Two class objects created at the same source position: same location key.
function makeGadgetClass(tag) {
  return class Gadget {
    constructor(i) {
      this.tag = tag;
      this.i = i;
    }
  };
}

class Animal {
  constructor(name) {
    this.name = name;
  }
}
class Dog extends Animal {
  constructor(name) {
    super(name);
    this.tricks = ['sit'];
  }
}
class Puppy extends Dog {
  #age = 1;
  static count = 0;
  constructor(name) {
    super(name);
    Puppy.count++;
  }
}

// Instances of TreeNode dominate other TreeNodes: the class retained size
// must not count nested instances twice.
class TreeNode {
  constructor(depth) {
    this.children = [];
    this.value = depth;
    if (depth > 0) {
      for (let i = 0; i < 3; i++) this.children.push(new TreeNode(depth - 1));
    }
  }
}

// A user class whose name is exactly "Object": its instances are plain-object
// candidates for interface inference *and* have a location.
const LocalObject = class Object {
  constructor(i) {
    this.alpha = i;
    this.beta = String(i);
  }
};

// Class names chosen through computed keys.
const odd = {
  ['<div id="main" class="x">']: class {},
  ['<nospace>']: class {},
  ['Detached <span class=y z>']: class {},
  ['Detached <b>']: class {},
  ['a,b']: class {},
  ['with "quotes", {braces} and \'single\'']: class {},
  // Not '(string)' or 'Function': an object class named like a class DevTools derives
  // collides with it in DevTools' string-keyed aggregates, and DevTools' Summary drops the
  // earlier row. leakhound keeps both rows (see heapsnap's tests), so the two differ there.
  ['ünïcödé Ελληνικά']: class {},
  ['😀 emoji']: class {},
  ['']: class {},
};

// V8 falls back to Symbol.toStringTag when the constructor's name is empty or
// "Object" (older V8 names the computed-key classes above after `odd`).
// Plain objects have no location; instances of an anonymous class do, and
// here all of them share one class-creating source position.
function anonymousClass() {
  return [class {}][0];
}

run(async (keep) => {
  const { Widget: EsmWidget } = await import('./lib/widget_esm.mjs');

  keep.widgetsA = Array.from({ length: 2000 }, (_, i) => new A.Widget(i));
  keep.widgetsB = Array.from({ length: 1500 }, (_, i) => new B.Widget(i));
  keep.widgetsHere = Array.from({ length: 700 }, (_, i) => new Widget(i));
  keep.widgetsEsm = Array.from({ length: 300 }, (_, i) => new EsmWidget(i));
  keep.pointsA = Array.from({ length: 1000 }, (_, i) => new A.Point(i, -i));
  keep.pointsB = Array.from({ length: 900 }, (_, i) => new B.Point(i, i, i));

  const G1 = makeGadgetClass('one');
  const G2 = makeGadgetClass('two');
  keep.gadgets = [];
  for (let i = 0; i < 400; i++) keep.gadgets.push(new G1(i), new G2(i));

  keep.animals = [];
  for (let i = 0; i < 300; i++) {
    keep.animals.push(new Animal('a' + i), new Dog('d' + i), new Puppy('p' + i));
  }

  keep.tree = new TreeNode(7); // 3280 TreeNodes
  keep.localObjects = Array.from({ length: 600 }, (_, i) => new LocalObject(i));

  keep.odd = odd;
  keep.oddInstances = [];
  for (const [name, C] of Object.entries(odd)) {
    const n = 5 + name.length;
    for (let i = 0; i < n; i++) {
      const o = new C();
      o.i = i;
      keep.oddInstances.push(o);
    }
  }

  keep.tagged = [];
  for (const name of Object.keys(odd)) {
    const Anon = anonymousClass();
    Object.defineProperty(Anon.prototype, Symbol.toStringTag, { value: name });
    for (let i = 0; i < 7; i++) {
      keep.tagged.push({ [Symbol.toStringTag]: name, v: 'tagged' }, new Anon());
    }
  }

  // Objects whose map says one constructor but were made differently.
  keep.createdFromProto = Array.from({ length: 50 }, () => Object.create(A.Widget.prototype));
  keep.reflected = Array.from({ length: 50 }, () => Reflect.construct(Animal, ['r'], Dog));
  keep.anonymous = Array.from({ length: 40 }, () => new (class {})());

  // Built-in classes.
  keep.builtins = {
    dates: Array.from({ length: 100 }, (_, i) => new Date(1e12 + i)),
    regexps: Array.from({ length: 100 }, (_, i) => new RegExp('x' + i + '+', 'g')),
    errors: Array.from({ length: 50 }, (_, i) => new TypeError('e' + i)),
    promises: Array.from({ length: 50 }, (_, i) => Promise.resolve(i)),
    proxies: Array.from({ length: 50 }, () => new Proxy({}, {})),
    symbols: Array.from({ length: 50 }, (_, i) => Symbol('s' + i)),
    bigints: Array.from({ length: 50 }, (_, i) => 2n ** 70n + BigInt(i)),
    numbers: Array.from({ length: 50 }, (_, i) => ({ n: i + 0.5 })),
    boxed: [new Number(1), new String('boxed'), new Boolean(false)],
  };
});
