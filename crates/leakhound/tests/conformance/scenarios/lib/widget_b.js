'use strict';
// Same class names as widget_a.js, different location and fields.




class Widget {
  constructor(i) {
    this.id = i;
    this.payload = { n: i, s: 'b' + i };
  }
  get double() {
    return this.id * 2;
  }
}

function Point(x, y, z) {
  this.x = x;
  this.y = y;
  this.z = z;
}

module.exports = { Widget, Point };
