// leakhound's source-map test service: every request books an order that is never
// released. Compiled with the real TypeScript compiler by the test.
import * as http from 'http';
import { Order, OrderBook, type OrderLine } from './orders';

/** The service's one book of orders. */
const book = new OrderBook();
let next = 0;

export function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const lines: OrderLine[] = [{ sku: `sku-${next % 7}`, quantity: 1 + (next % 3) }];
  const order = new Order(String(next++), lines);
  book.add(order);
  res.end(`booked ${order.id}: ${order.total()}`);
}

if (require.main === module) {
  http.createServer(handle).listen(Number(process.argv[2] ?? 0), '127.0.0.1');
}
