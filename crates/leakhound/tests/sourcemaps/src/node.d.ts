// The few Node.js APIs the service uses, declared here so that the test needs no @types/node.
declare module 'http' {
  export interface IncomingMessage {
    url?: string;
  }
  export interface ServerResponse {
    end(body?: string): void;
  }
  export interface Server {
    listen(port: number, host: string): Server;
  }
  export function createServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server;
}

declare const Buffer: { alloc(size: number, fill?: number): Uint8Array };
declare const process: { argv: string[] };
declare const require: { main: unknown };
declare const module: unknown;
