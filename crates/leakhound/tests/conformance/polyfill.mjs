// Promise.withResolvers is missing from Node 20 but used by the DevTools heap
// worker. Load with `node --import ./polyfill.mjs …` (also applies to workers).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
