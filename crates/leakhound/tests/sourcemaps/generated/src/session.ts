// Sessions: a store that never expires anything.

export interface SessionData {
  user: string;
  created: number;
  // many type-only lines to shift positions
  tags: string[];
}

type Maybe<T> = T | undefined;

export class Session {
  public data: SessionData;
  public blob: string;

  constructor(user: string, n: number) {
    this.data = { user, created: Date.now(), tags: ['a', 'b'] };
    this.blob = 'x'.repeat(200) + n;
  }

  describe(): string {
    return `${this.data.user}`;
  }
}

export class SessionStore {
  private sessions = new Map<string, Session>();

  open(user: string, n: number): Session {
    const s = new Session(user, n);
    this.sessions.set(user + ':' + n, s);
    return s;
  }

  find(key: string): Maybe<Session> {
    return this.sessions.get(key);
  }
}
