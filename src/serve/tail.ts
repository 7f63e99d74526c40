// Following a growing metrics.jsonl: each poll reads the bytes appended since the last one and
// returns the complete new lines, parsed (bad lines skipped and counted). A last line without its
// newline is held back until the writer finishes it. A file that was replaced (another inode: a
// resumed run drops the lines logged after its checkpoint by an atomic rewrite, runLog.ts
// truncateMetrics), shrank, was rewritten in place (its first bytes changed: RunLog.clear, then
// new lines) or vanished is read again from the start, and the poll says so (`reset`).
// Not here: when to poll (server.ts).
import fs from 'node:fs';
import { parseMetricsLine, type MetricsLine } from './runs.ts';

export interface TailPoll {
  /** The file was replaced or shortened: `lines` is everything, not an addition. */
  reset: boolean;
  lines: MetricsLine[];
}

export class MetricsTail {
  /** Every good line read so far. */
  readonly lines: MetricsLine[] = [];
  skipped = 0;
  private offset = 0;
  private pending = '';
  private ino = -1;
  /** The file's first bytes as last read: a rewrite in place changes them. */
  private head: Buffer = Buffer.alloc(0);

  constructor(readonly file: string) {}

  poll(): TailPoll {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      if (this.offset === 0 && !this.lines.length) return { reset: false, lines: [] };
      this.clear();
      return { reset: true, lines: [] };
    }
    let reset = false;
    const fd = fs.openSync(this.file, 'r');
    let text: string;
    try {
      if (st.size < this.offset || (this.ino !== -1 && st.ino !== this.ino) || !this.sameHead(fd)) {
        this.clear();
        reset = true;
      }
      this.ino = st.ino;
      if (st.size === this.offset) return { reset, lines: reset ? [...this.lines] : [] };
      const buf = Buffer.alloc(st.size - this.offset);
      const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
      if (this.head.length < HEAD_BYTES && this.offset < HEAD_BYTES) this.head = Buffer.concat([this.head, buf.subarray(0, Math.min(n, HEAD_BYTES - this.offset))]);
      this.offset += n;
      text = this.pending + buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
    const parts = text.split('\n');
    this.pending = parts.pop()!;
    const fresh: MetricsLine[] = [];
    for (const l of parts) {
      if (!l.trim()) continue;
      const rec = parseMetricsLine(l);
      if (rec) fresh.push(rec);
      else this.skipped++;
    }
    for (const l of fresh) this.lines.push(l); // not push(...fresh): a long file has more lines than a call takes arguments
    return { reset, lines: reset ? [...this.lines] : fresh };
  }

  private sameHead(fd: number): boolean {
    if (!this.head.length) return true;
    const now = Buffer.alloc(this.head.length);
    const n = fs.readSync(fd, now, 0, now.length, 0);
    return n === now.length && now.equals(this.head);
  }

  private clear(): void {
    this.lines.length = 0;
    this.skipped = 0;
    this.offset = 0;
    this.pending = '';
    this.ino = -1;
    this.head = Buffer.alloc(0);
  }
}

const HEAD_BYTES = 256;
