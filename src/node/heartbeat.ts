// The timers that find dead and idle peers, kept out of the transport so each rule is read in one
// place: a Ping every `interval` with a deadline for its Pong (PEF pinged every 30 s but never
// waited for the answer, so a peer that vanished without a FIN lived forever), and an optional
// idle timer for connections that exchange no messages.

import { performance } from 'node:perf_hooks';

/** What a heartbeat does to its connection. */
export interface HeartbeatActions {
  /** Sends a Ping with this payload. */
  ping(payload: Buffer): void;
  /** The Pong did not come back within the timeout: the peer is gone or does not read. */
  timedOut(): void;
}

/** How many points of the second half of the first interval the first Ping is spread over. */
const JITTER_STEPS = 50;

/**
 * One connection's heartbeat. The first Ping goes out at a random point in the second half of the
 * first interval, so thousands of connections opened together do not ping in the same millisecond;
 * later ones follow `interval` after each Pong (one shared duration, so Node keeps them in one timer
 * list). Only a Pong carrying the payload of the last Ping counts: unsolicited Pongs (§5.5.3) from
 * a peer that never reads could otherwise keep it alive.
 */
export class Heartbeat {
  readonly #interval: number;
  readonly #timeout: number;
  readonly #actions: HeartbeatActions;
  #timer: NodeJS.Timeout | null = null;
  /** The payload of the Ping awaiting its Pong, or null. */
  #awaiting: Buffer | null = null;
  #sentAt = 0;
  #sequence = 0;
  #latency: number | undefined = undefined;

  constructor(interval: number, timeout: number, actions: HeartbeatActions) {
    this.#interval = interval;
    this.#timeout = timeout;
    this.#actions = actions;
  }

  /** The round trip of the last answered Ping in milliseconds, or undefined before the first Pong. */
  get latency(): number | undefined {
    return this.#latency;
  }

  start(): void {
    // One of JITTER_STEPS + 1 points of the second half: Node keeps a timer list per distinct
    // duration, so a few dozen shared ones spread the Pings as well as thousands of unique ones.
    const step = this.#interval / 2 / JITTER_STEPS;
    this.#arm(Math.floor(this.#interval / 2 + Math.round(Math.random() * JITTER_STEPS) * step));
  }

  /** A Pong arrived. */
  pong(data: Buffer): void {
    const awaiting = this.#awaiting;
    if (awaiting === null || !awaiting.equals(data)) return;
    this.#latency = performance.now() - this.#sentAt;
    this.#awaiting = null;
    // With a deadline the timer was waiting for this Pong; without one the next Ping is already due.
    if (this.#timeout > 0) this.#arm(this.#interval);
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#awaiting = null;
  }

  /** The timer's callback, for every heartbeat (the heartbeat comes as its argument): no closure per connection. */
  static #onTimer(heartbeat: Heartbeat): void {
    heartbeat.#fire();
  }

  #fire(): void {
    this.#timer = null;
    if (this.#awaiting !== null && this.#timeout > 0) {
      this.#awaiting = null;
      this.#actions.timedOut();
      return;
    }
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(this.#sequence, 0);
    this.#sequence = (this.#sequence + 1) >>> 0;
    this.#awaiting = payload;
    this.#sentAt = performance.now();
    this.#arm(this.#timeout > 0 ? this.#timeout : this.#interval);
    this.#actions.ping(payload);
  }

  #arm(ms: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(Heartbeat.#onTimer, ms, this);
    this.#timer.unref();
  }
}

/**
 * Closes a connection after `timeout` ms without a message in either direction. Activity is a
 * timestamp, not a timer reset, so a busy connection costs one clock read per message.
 */
export class IdleTimer {
  readonly #timeout: number;
  readonly #onIdle: () => void;
  #timer: NodeJS.Timeout | null = null;
  #last = 0;

  constructor(timeout: number, onIdle: () => void) {
    this.#timeout = timeout;
    this.#onIdle = onIdle;
  }

  start(): void {
    this.#last = performance.now();
    this.#arm(this.#timeout);
  }

  /** A message was received or sent. */
  touch(): void {
    this.#last = performance.now();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  static #onTimer(timer: IdleTimer): void {
    timer.#fire();
  }

  #fire(): void {
    this.#timer = null;
    const idle = performance.now() - this.#last;
    if (idle >= this.#timeout) this.#onIdle();
    else this.#arm(Math.ceil(this.#timeout - idle));
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(IdleTimer.#onTimer, ms, this);
    this.#timer.unref();
  }
}
