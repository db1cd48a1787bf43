/**
 * chrony's `maxchange offset start ignore`: after `start` clock updates, an update whose offset
 * exceeds `offset` seconds is ignored, at most `ignore` times in a row. chronyd then exits;
 * Rubidium keeps refusing such updates instead (the clock is not corrected either way, and the
 * daemon keeps reporting why). A negative `offset` ignores every large offset without limit.
 */
export interface MaxChangeOptions {
  offset: number;
  start: number;
  ignore: number;
}

export class MaxChangeGuard {
  private ignored = 0;
  /** Updates refused beyond the `ignore` count (chronyd would have exited at the first). */
  exceeded = 0;

  constructor(private readonly opts: MaxChangeOptions) {}

  /** Whether an update with `offset` may be applied, given the number of updates made so far. */
  accept(offset: number, updatesSoFar: number): boolean {
    if (updatesSoFar < this.opts.start || Math.abs(offset) <= Math.abs(this.opts.offset)) {
      this.ignored = 0;
      return true;
    }
    if (this.opts.offset < 0 || this.ignored < this.opts.ignore) this.ignored++;
    else this.exceeded++;
    return false;
  }
}
