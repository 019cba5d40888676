'use strict';
// A `Widget` and a `Point` that share their names with those in widget_b.js:
// DevTools groups object instances by constructor location, so these must be
// separate Summary rows with the same name.
class Widget {
  constructor(i) {
    this.id = i;
    this.label = 'a' + i;
    this.tags = [i, i + 1];
  }
}

function Point(x, y) {
  this.x = x;
  this.y = y;
}

module.exports = { Widget, Point };
