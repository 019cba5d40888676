import * as http from 'http';
import { SessionStore } from './session';

// The app's one store of sessions.
const store = new SessionStore();
let counter = 0;

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const s = store.open('user' + (counter % 10), counter++);
  res.end('ok ' + s.describe());
}

const server = http.createServer(handle);
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  console.log('listening', addr);
});
