import { performance } from 'node:perf_hooks';

const SAMPLE_MS = 100;
/** Event-loop utilisation above which the process counts as busy, and below which it is calm again. */
const BUSY_ABOVE = 0.6;
const CALM_BELOW = 0.25;

/**
 * Whether this process's event loop is busy, from its utilisation over the last 100 ms (with
 * hysteresis, so it does not flap). The relay coalesces paced tokens only while it is: each event
 * costs a GraphQL execution and a socket write, and under load fewer, larger events keep the
 * first tokens of new requests and the cancellations of others from queueing behind them.
 */
class EventLoopLoad {
  private timer: NodeJS.Timeout | undefined;
  private last = performance.eventLoopUtilization();
  private busyNow = false;

  get busy(): boolean {
    if (!this.timer) {
      this.timer = setInterval(this.sample, SAMPLE_MS);
      this.timer.unref();
    }
    return this.busyNow;
  }

  private readonly sample = (): void => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.last);
    this.last = now;
    if (utilization > BUSY_ABOVE) this.busyNow = true;
    else if (utilization < CALM_BELOW) this.busyNow = false;
  };
}

export const eventLoopLoad = new EventLoopLoad();
