/**
 * Transmit-latency compensation for a server's basic-mode answers.
 *
 * A basic answer's transmit timestamp T3 is written just before sendmsg(), but the packet leaves
 * later: the send system call, the UDP/IP stack and the device take microseconds (8.8 µs median
 * on the test VM at low request rates, cold caches). A client computes its offset as
 * ((T2 − T1) + (T3 − T4)) / 2, so an early T3 makes every client see the server half that
 * latency behind (−4.4 µs, chronyd's server too). Interleaved mode fixes it by sending the
 * kernel's TX timestamp in the next answer; basic clients (nearly all) never get it.
 *
 * This learns the latency from the kernel's software TX timestamps of a sample of answers (at
 * most one every SAMPLE_GAP_NS of receive time), the point interleaved mode would report as T3,
 * and the server adds a low quantile of it (QUANTILE of the last SAMPLES) to T3. Not the median:
 * clients keep their fastest exchanges (minimum delay, delay weights), i.e. answers that left
 * quickly, and with the median their T3 would lie after the packet left (measured on loopback:
 * the probe read +1.8 µs with the median, the delay turned negative).
 * Pure: the server feeds it receive times, written T3s and kernel stamps.
 */

/** Answers sampled at most this often (ns of receive time): ≤ 100 TX stamps per second. */
export const SAMPLE_GAP_NS = 10_000_000;
/** The compensation is the QUANTILE of this many latest samples. */
export const SAMPLES = 31;
/** The 10th percentile (the 4th smallest of 31; the smallest of fewer than 11). */
export const QUANTILE = 0.1;
/** A sample outside [0, MAX_SAMPLE_NS] is a clock step or a lost stamp, not a latency. */
export const MAX_SAMPLE_NS = 1_000_000;
/** The compensation never exceeds this (a stalled sender is not the typical latency). */
export const MAX_COMPENSATION_NS = 200_000;

export class TxLatency {
  private readonly recent = new Float64Array(SAMPLES);
  private readonly sorted = new Float64Array(SAMPLES);
  private count = 0;
  private next = 0;
  private compensation = 0;
  /** Receive time of the last sampled answer: [Unix seconds, ns]; -inf before the first. */
  private lastSec = -Infinity;
  private lastNs = 0;

  /** The compensation to add to T3 now, ns (0 until the first sample). */
  get ns(): number {
    return this.compensation;
  }

  /** Samples taken into the median so far (at most SAMPLES). */
  get samples(): number {
    return this.count;
  }

  /**
   * Whether the answer to a request received at `rx` = [Unix seconds, ns] should be sampled
   * (it then asks for a kernel TX stamp). Marks it sampled when true.
   */
  due(rx: Float64Array): boolean {
    const sec = rx[0]!;
    const ns = rx[1]!;
    const gap = (sec - this.lastSec) * 1e9 + (ns - this.lastNs);
    // A receive time before the last one (clock stepped back) restarts the gap too.
    if (gap < SAMPLE_GAP_NS && gap >= 0) return false;
    this.lastSec = sec;
    this.lastNs = ns;
    return true;
  }

  /** One measured latency: kernel TX timestamp minus the T3 written without compensation, ns. */
  add(latencyNs: number): void {
    if (!(latencyNs >= 0 && latencyNs <= MAX_SAMPLE_NS)) return;
    this.recent[this.next] = latencyNs;
    this.next = (this.next + 1) % SAMPLES;
    if (this.count < SAMPLES) this.count++;
    const s = this.sorted.subarray(0, this.count);
    s.set(this.recent.subarray(0, this.count));
    s.sort();
    const low = s[Math.floor((this.count - 1) * QUANTILE)]!;
    this.compensation = Math.min(Math.round(low), MAX_COMPENSATION_NS);
  }
}
