/**
 * Random bytes for nonces, drawn from the injected source in blocks: one call to the source
 * (node:crypto's CSPRNG in the daemon, a seeded generator in tests) per `blockSize` bytes
 * instead of one allocation and call per 16-byte nonce on the NTS server path. Bytes handed
 * out are wiped from the pool.
 */
export class RandomPool {
  private readonly source: (n: number) => Uint8Array;
  private readonly blockSize: number;
  private block: Uint8Array = new Uint8Array(0);
  private pos = 0;

  constructor(source: (n: number) => Uint8Array, blockSize = 4096) {
    this.source = source;
    this.blockSize = blockSize;
  }

  /** Writes `n` random bytes at out[offset]. */
  fill(out: Uint8Array, offset: number, n: number): void {
    if (n > this.blockSize) {
      out.set(this.source(n).subarray(0, n), offset);
      return;
    }
    if (this.block.length - this.pos < n) {
      this.block = this.source(this.blockSize);
      this.pos = 0;
      if (this.block.length < n) throw new RangeError('random source returned too few bytes');
    }
    const b = this.block;
    let p = this.pos;
    for (let i = 0; i < n; i++, p++) {
      out[offset + i] = b[p]!;
      b[p] = 0;
    }
    this.pos = p;
  }
}
