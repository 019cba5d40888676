// A Deno program for the conformance test (tests/it/conformance.rs): class instances in a Map,
// closures, arrays and strings, held until the test has captured it.
class Session {
  constructor(n) {
    this.n = n;
    this.token = 'tok-' + n;
    this.onEnd = () => this.n;
  }
}
globalThis.sessions = new Map();
for (let i = 0; i < 5000; i++) globalThis.sessions.set('s' + i, new Session(i));
globalThis.log = Array.from({ length: 2000 }, (_, i) => ({ at: i, text: 'line ' + i }));
console.log('ready');
setInterval(() => {}, 1000);
