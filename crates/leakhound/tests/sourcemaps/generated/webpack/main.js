/******/ (() => { // webpackBootstrap
/******/ 	"use strict";
/******/ 	var __webpack_modules__ = ({

/***/ "./src/session.ts"
/*!************************!*\
  !*** ./src/session.ts ***!
  \************************/
(__unused_webpack_module, exports) {


// Sessions: a store that never expires anything.
Object.defineProperty(exports, "__esModule", ({ value: true }));
exports.SessionStore = exports.Session = void 0;
class Session {
    data;
    blob;
    constructor(user, n) {
        this.data = { user, created: Date.now(), tags: ['a', 'b'] };
        this.blob = 'x'.repeat(200) + n;
    }
    describe() {
        return `${this.data.user}`;
    }
}
exports.Session = Session;
class SessionStore {
    sessions = new Map();
    open(user, n) {
        const s = new Session(user, n);
        this.sessions.set(user + ':' + n, s);
        return s;
    }
    find(key) {
        return this.sessions.get(key);
    }
}
exports.SessionStore = SessionStore;


/***/ },

/***/ "http"
/*!***********************!*\
  !*** external "http" ***!
  \***********************/
(module) {

module.exports = require("http");

/***/ }

/******/ 	});
/************************************************************************/
/******/ 	// The module cache
/******/ 	const __webpack_module_cache__ = {};
/******/ 	
/******/ 	// The require function
/******/ 	function __webpack_require__(moduleId) {
/******/ 		// Check if module is in cache
/******/ 		const cachedModule = __webpack_module_cache__[moduleId];
/******/ 		if (cachedModule !== undefined) {
/******/ 			return cachedModule.exports;
/******/ 		}
/******/ 		// Create a new module (and put it into the cache)
/******/ 		const module = __webpack_module_cache__[moduleId] = {
/******/ 			// no module.id needed
/******/ 			// no module.loaded needed
/******/ 			exports: {}
/******/ 		};
/******/ 	
/******/ 		// Execute the module function
/******/ 		if (!(moduleId in __webpack_modules__)) {
/******/ 			delete __webpack_module_cache__[moduleId];
/******/ 			const e = new Error("Cannot find module '" + moduleId + "'");
/******/ 			e.code = 'MODULE_NOT_FOUND';
/******/ 			throw e;
/******/ 		}
/******/ 		__webpack_modules__[moduleId](module, module.exports, __webpack_require__);
/******/ 	
/******/ 		// Return the exports of the module
/******/ 		return module.exports;
/******/ 	}
/******/ 	
/************************************************************************/
let __webpack_exports__ = {};
// This entry needs to be wrapped in an IIFE because it needs to be isolated against other modules in the chunk.
(() => {
let exports = __webpack_exports__;
/*!***********************!*\
  !*** ./src/server.ts ***!
  \***********************/

Object.defineProperty(exports, "__esModule", ({ value: true }));
const http = __webpack_require__(/*! http */ "http");
const session_1 = __webpack_require__(/*! ./session */ "./src/session.ts");
// The app's one store of sessions.
const store = new session_1.SessionStore();
let counter = 0;
function handle(req, res) {
    const s = store.open('user' + (counter % 10), counter++);
    res.end('ok ' + s.describe());
}
const server = http.createServer(handle);
server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    console.log('listening', addr);
});

})();

/******/ })()
;
//# sourceMappingURL=main.js.map