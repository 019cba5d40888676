// An ES-module `Widget` (a third location for the same name).
export class Widget {
  #secret;
  static created = 0;
  constructor(i) {
    this.id = i;
    this.#secret = { i };
    Widget.created++;
  }
}
