var __create = Object.create;
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __getProtoOf = Object.getPrototypeOf;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toESM = (mod, isNodeMode, target) => (target = mod != null ? __create(__getProtoOf(mod)) : {}, __copyProps(
  // If the importer is in node compatibility mode or this is not an ESM
  // file that has been converted to a CommonJS file using a Babel-
  // compatible transform (i.e. "__esModule" has not been set), then set
  // "default" to the CommonJS "module.exports" for node compatibility.
  isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
  mod
));

// src/server.ts
var http = __toESM(require("http"));

// src/session.ts
var Session = class {
  data;
  blob;
  constructor(user, n) {
    this.data = { user, created: Date.now(), tags: ["a", "b"] };
    this.blob = "x".repeat(200) + n;
  }
  describe() {
    return `${this.data.user}`;
  }
};
var SessionStore = class {
  sessions = /* @__PURE__ */ new Map();
  open(user, n) {
    const s = new Session(user, n);
    this.sessions.set(user + ":" + n, s);
    return s;
  }
  find(key) {
    return this.sessions.get(key);
  }
};

// src/server.ts
var store = new SessionStore();
var counter = 0;
function handle(req, res) {
  const s = store.open("user" + counter % 10, counter++);
  res.end("ok " + s.describe());
}
var server = http.createServer(handle);
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  console.log("listening", addr);
});
//# sourceMappingURL=server.js.map
