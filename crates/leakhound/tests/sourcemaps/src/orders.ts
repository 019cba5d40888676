// Orders and the book that keeps them: the book never forgets one (the leak).

/** One line of an order, as the client sends it. */
export interface OrderLine {
  sku: string;
  quantity: number;
}

/** Where an order is in its life. */
export type Status = 'open' | 'paid' | 'shipped';

/** What the type checker alone knows: TypeScript's lines differ from the emitted ones. */
export interface Priced {
  total(): number;
}

export class Order implements Priced {
  status: Status = 'open';
  /** The rendered receipt: its bytes live outside the JS heap. */
  readonly receipt: Uint8Array;

  constructor(
    readonly id: string,
    readonly lines: OrderLine[],
  ) {
    this.receipt = Buffer.alloc(16 * 1024, 1);
  }

  total(): number {
    return this.lines.reduce((sum, l) => sum + l.quantity, 0);
  }
}

export class OrderBook {
  private readonly byId = new Map<string, Order>();

  add(order: Order): void {
    // BUG: nothing ever removes an order, paid or not.
    this.byId.set(order.id, order);
  }
}
