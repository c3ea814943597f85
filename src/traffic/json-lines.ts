// Batched JSON-lines output for the traffic tools. Writing one line per connection with a syscall each
// would cost more than the connection itself at thousands per second, so lines are gathered and
// written once per event-loop turn.

export class JsonLinesWriter {
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  write(event: object): void {
    this.pending.push(JSON.stringify(event));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes everything gathered so far; resolves once the stream has taken it. */
  flush(): Promise<void> {
    this.scheduled = false;
    if (this.pending.length === 0) return Promise.resolve();
    const text = this.pending.join('\n') + '\n';
    this.pending = [];
    return new Promise((resolve) => {
      this.out.write(text, () => resolve());
    });
  }
}
