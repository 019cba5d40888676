// leakhound-expect: {"leak": true, "class": "Function", "owner": "config-change", "owner_class": "Array", "holder": "EventEmitter._events[\"config-change\"]", "binding": "bus", "binding_line": 13}
// Leak: GET /widget renders a widget with the tenant's settings and
// subscribes `function onConfigChange` to the module-level EventEmitter `bus`
// so that the settings follow config changes; the listener is never removed.
// setMaxListeners(0) silenced the MaxListenersExceededWarning that would
// have told. The listeners pile up in bus._events['config-change'] (an Array
// once there are two), each closing over its request's settings.
// DevTools' Summary groups all closures under the class "Function".
'use strict';
const { EventEmitter } = require('node:events');
const { run } = require('./lib/harness');

const bus = new EventEmitter();
bus.setMaxListeners(0);

class WidgetSettings {
  constructor(tenant, widget) {
    this.tenant = tenant;
    this.widget = widget;
    this.theme = 'light';
    this.locale = 'en-US';
  }
}

function handler(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const settings = new WidgetSettings(req.headers['x-tenant'], url.searchParams.get('w'));
  bus.on('config-change', function onConfigChange(change) {
    if (change.tenant === settings.tenant) settings.theme = change.theme;
  });
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(`<div class="widget ${settings.theme}" data-w="${settings.widget}"></div>`);
}

run({
  handler,
  request: (i) => ({ path: `/widget?w=w${i}`, headers: { 'x-tenant': 'tenant-' + (i % 13) } }),
  warmup: 300,
  perRound: 1500,
});
