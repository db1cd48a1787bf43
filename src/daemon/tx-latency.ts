/**
 * Estimates how long a datagram takes from the moment its T3 is written (just before sendto())
 * to the kernel's software TX timestamp (taken when the driver hands it to the device), from
 * the TX timestamps the kernel reports for our answers. The runtime adds the estimate to basic
 * mode T3s: otherwise every basic-mode client sees the answer leave a few microseconds later
 * than T3 says and is biased by half of that.
 *
 * The estimate is a low quantile (the second smallest of the last WINDOW samples), not the
 * median: clients favour their lowest-delay exchanges, which are those whose answer left
 * fastest, so the latency that matters to them is the minimum one; the quantile ignores a
 * single freak low value.
 */
const WINDOW = 31;
const MIN_SAMPLES = 5;
/** Latencies outside [0, MAX] are not sendto() latency (clock changed, reordering): ignored. */
const MAX_LATENCY = 500e-6;

export class TxLatencyEstimator {
  private readonly ring: number[] = [];
  private next = 0;
  private cached: number | undefined;

  add(latency: number): void {
    if (!(latency >= 0 && latency <= MAX_LATENCY)) return;
    if (this.ring.length < WINDOW) this.ring.push(latency);
    else this.ring[this.next] = latency;
    this.next = (this.next + 1) % WINDOW;
    this.cached = undefined;
  }

  get samples(): number {
    return this.ring.length;
  }

  /** Seconds to add to a basic-mode T3 (0 until enough samples). */
  correction(): number {
    if (this.ring.length < MIN_SAMPLES) return 0;
    if (this.cached === undefined) {
      const s = [...this.ring].sort((a, b) => a - b);
      this.cached = s[1]!;
    }
    return this.cached;
  }
}
