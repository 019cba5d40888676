'use strict';
// Typed arrays, ArrayBuffers, Buffers (pooled and not), DataViews,
// SharedArrayBuffers, resizable and detached buffers; and JS arrays of every
// elements kind: packed/holey SMI and double, objects, dictionary (sparse),
// copy-on-write literals shared between arrays, empty arrays, Array
// subclasses and arrays with named properties.
const { run } = require('./lib/snapshot');

class MyArray extends Array {}

function cowLiteral() {
  return [1, 2, 3, 4, 5, 6, 7, 8];
}

run((keep) => {
  // Buffers and typed arrays.
  keep.arrayBuffers = Array.from({ length: 20 }, (_, i) => new ArrayBuffer(1024 * (i + 1)));
  keep.bigBuffer = new ArrayBuffer(4 * 1024 * 1024);
  keep.views = Array.from({ length: 50 }, (_, i) => new Uint8Array(keep.bigBuffer, i * 1024, 1024));
  keep.typed = [
    new Int8Array(100), new Uint8ClampedArray(200), new Int16Array(300), new Uint16Array(400),
    new Int32Array(500), new Uint32Array(600), new Float32Array(700), new Float64Array(800),
    new BigInt64Array(90), new BigUint64Array(100),
  ];
  keep.smallTyped = Array.from({ length: 300 }, (_, i) => new Float64Array(i % 8)); // on-heap
  keep.dataViews = Array.from({ length: 30 }, (_, i) => new DataView(keep.arrayBuffers[i % 20]));
  keep.pooled = Array.from({ length: 400 }, (_, i) => Buffer.from('pooled-' + i)); // share slabs
  keep.unpooled = Array.from({ length: 20 }, (_, i) => Buffer.alloc(10000 + i));
  keep.unsafe = Array.from({ length: 20 }, () => Buffer.allocUnsafeSlow(5000));
  keep.shared = new SharedArrayBuffer(64 * 1024);
  keep.sharedViews = [new Int32Array(keep.shared), new Uint8Array(keep.shared, 16)];
  keep.resizable = new ArrayBuffer(1024, { maxByteLength: 1024 * 1024 });
  keep.resizable.resize(4096);
  const toDetach = new ArrayBuffer(8192);
  structuredClone(toDetach, { transfer: [toDetach] });
  keep.detached = toDetach;

  // JS arrays.
  keep.packedSmi = Array.from({ length: 100000 }, (_, i) => i);
  keep.packedDouble = Array.from({ length: 20000 }, (_, i) => i + 0.5);
  const holey = new Array(5000);
  for (let i = 0; i < 5000; i += 3) holey[i] = i;
  keep.holey = holey;
  keep.sparse = [];
  keep.sparse[1000000] = 'far';
  keep.sparse[7] = 'near';
  keep.objectsArray = Array.from({ length: 5000 }, (_, i) => ({ el: i }));
  keep.nested = Array.from({ length: 200 }, (_, i) => [i, [i, [i, [i]]]]);
  keep.cow = Array.from({ length: 500 }, () => cowLiteral()); // share one COW store
  keep.cowWritten = Array.from({ length: 50 }, (_, i) => {
    const a = cowLiteral();
    a[0] = i; // copies the store
    return a;
  });
  keep.empties = Array.from({ length: 300 }, () => []);
  keep.subclassed = Array.from({ length: 100 }, (_, i) => MyArray.from([i, i + 1]));
  keep.withProps = Array.from({ length: 100 }, (_, i) => Object.assign([i], { label: 'l' + i }));
  keep.mixed = Array.from({ length: 100 }, (_, i) => [i, 'str', { o: i }, 1.5, null, undefined, true]);
  keep.sharedElements = Array.from({ length: 20 }, () => keep.objectsArray); // same array 20×
  keep.strings = Array.from({ length: 1000 }, (_, i) => 'el' + i);
  keep.args = (function () {
    return arguments;
  })(1, 2, 3);
});
