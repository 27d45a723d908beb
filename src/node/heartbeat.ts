// The timers that find dead and idle peers, kept out of the transport so each rule is read in one
// place: a Ping every `interval` with a deadline for its Pong (PEF pinged every 30 s but never
// waited for the answer, so a peer that vanished without a FIN lived forever), and an optional
// idle timer for connections that exchange no messages.

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** Bytes of a heartbeat Ping's payload: 64 bits from the CSPRNG, which no peer can guess. */
export const PING_PAYLOAD_BYTES = 8;

/** How many points of the second half of the first interval the first Ping is spread over. */
const JITTER_STEPS = 50;

/**
 * A deadline waiting in a DueList: the heartbeat or idle timer itself is the list's node, so a
 * connection holds no timer object of its own (a Node Timeout is about 120 bytes, with its argument
 * list more). uWebSockets keeps one timer for all its sockets the same way.
 */
abstract class Deadline {
  /** When it is due, in performance.now() milliseconds. */
  due = 0;
  prev: Deadline | null = null;
  next: Deadline | null = null;
  list: DueList | null = null;
  /** Called once it is due, after it was taken off its list. */
  abstract onDue(): void;
}

/**
 * Deadlines of one duration, due in the order they were added (each is added `duration` ms after
 * now, so the list stays sorted by appending), behind one unref'd Node timer set for the first.
 * Node keeps its own timers the same way, one list per duration; here the nodes are ours.
 */
class DueList {
  static readonly #lists = new Map<number, DueList>();
  readonly #duration: number;
  #head: Deadline | null = null;
  #tail: Deadline | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** The due time the timer was set for: when it fires, everything due by then is due. */
  #armedFor = 0;

  private constructor(duration: number) {
    this.#duration = duration;
  }

  /** Makes `deadline` due `ms` from now (taking it off any list it was on). */
  static add(deadline: Deadline, ms: number): void {
    DueList.remove(deadline);
    let list = DueList.#lists.get(ms);
    if (list === undefined) {
      list = new DueList(ms);
      DueList.#lists.set(ms, list);
    }
    deadline.due = performance.now() + ms;
    deadline.list = list;
    deadline.prev = list.#tail;
    if (list.#tail !== null) list.#tail.next = deadline;
    else {
      list.#head = deadline;
      list.#arm(deadline.due);
    }
    list.#tail = deadline;
  }

  /** Takes `deadline` off its list, if it is on one. */
  static remove(deadline: Deadline): void {
    const list = deadline.list;
    if (list === null) return;
    if (deadline.prev !== null) deadline.prev.next = deadline.next;
    else list.#head = deadline.next;
    if (deadline.next !== null) deadline.next.prev = deadline.prev;
    else list.#tail = deadline.prev;
    deadline.prev = deadline.next = deadline.list = null;
    if (list.#head === null) list.#drop();
  }

  /** The list is empty: its timer goes, and so does the list (no timer outlives the last deadline). */
  #drop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    DueList.#lists.delete(this.#duration);
  }

  /** Sets the list's one timer for `due` (performance.now() milliseconds). */
  #arm(due: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(DueList.#onTimer, Math.max(1, Math.ceil(due - performance.now())), this);
    this.#timer.unref();
  }

  static #onTimer(list: DueList): void {
    list.#timer = null;
    // The timer was set for #armedFor and Node's timers do not fire early, so that much time has
    // passed even when the clock read says a hair less (or a test's mocked setTimeout drives it).
    const now = Math.max(performance.now(), list.#armedFor);
    try {
      // What a deadline does when due may add deadlines to this list: they fall due `duration` later.
      let head = list.#head;
      while (head !== null && head.due <= now) {
        DueList.remove(head);
        head.onDue();
        head = list.#head;
      }
    } finally {
      // Even if one deadline's action threw, the others on the list stay timed.
      const head = list.#head;
      if (head !== null && list.#timer === null) list.#arm(head.due);
    }
  }
}

/**
 * One connection's heartbeat. The first Ping goes out at a random point in the second half of the
 * first interval, so thousands of connections opened together do not ping in the same millisecond;
 * later ones follow `interval` after each Pong (one shared duration, so all connections share one
 * DueList and its one timer). Only a Pong carrying the payload of the last Ping counts: unsolicited
 * Pongs (§5.5.3) from a peer that never reads could otherwise keep it alive. The payload is 8 random
 * bytes from the CSPRNG: with a counter (as before), a peer that never reads kept itself alive by
 * sending Pongs 0, 1, 2, … blindly.
 *
 * What it does to its connection is a subclass's two methods, so a connection's heartbeat is one
 * object (no separate target object, no closures).
 */
export abstract class Heartbeat extends Deadline {
  readonly #interval: number;
  readonly #timeout: number;
  /** The deadline passed: the check, after this turn's reads, of whether the Pong came. */
  #verdict: NodeJS.Immediate | null = null;
  /** The payload of the Ping awaiting its Pong, or null. */
  #awaiting: Buffer | null = null;
  #sentAt = 0;
  #latency: number | undefined = undefined;
  /** Waiting out the first half of the first interval (see start). */
  #starting = false;

  constructor(interval: number, timeout: number) {
    super();
    this.#interval = interval;
    this.#timeout = timeout;
  }

  /** Sends a Ping with this payload. */
  protected abstract ping(payload: Buffer): void;

  /** The Pong did not come back within the timeout: the peer is gone or does not read. */
  protected abstract timedOut(): void;

  /** The round trip of the last answered Ping in milliseconds, or undefined before the first Pong. */
  get latency(): number | undefined {
    return this.#latency;
  }

  start(): void {
    // The first half of the first interval is one duration for every connection, so every new
    // connection waits in one DueList: one that closes before then (most short-lived ones) costs no
    // Node timer of its own, where a list of its own, emptied at its close, set and cleared one.
    this.#starting = true;
    this.#arm(Math.floor(this.#interval / 2));
  }

  /**
   * The first half has passed: the first Ping is due at one of JITTER_STEPS + 1 points of the
   * second half. There is a DueList (and a timer) per distinct duration, so a few dozen shared
   * ones spread the Pings as well as thousands of unique ones. Returns whether it is due now.
   */
  #jitter(): boolean {
    this.#starting = false;
    const step = this.#interval / 2 / JITTER_STEPS;
    // Whole steps the first half ran late by (a stalled event loop) come off the draw, so the first
    // Ping stays within the interval, give or take a step (found by a review helper: a 60 ms stall
    // put it at 1.25 intervals); the durations stay the JITTER_STEPS + 1 shared ones.
    const late = Math.floor((performance.now() - this.due) / step);
    const steps = Math.round(Math.random() * JITTER_STEPS) - (late > 0 ? late : 0);
    const ms = steps > 0 ? Math.floor(steps * step) : 0;
    if (ms === 0) return true;
    this.#arm(ms);
    return false;
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
    DueList.remove(this);
    if (this.#verdict !== null) clearImmediate(this.#verdict);
    this.#verdict = null;
    this.#awaiting = null;
  }

  /** @internal The deadline came: the first half of the first interval passed, a Ping is due, or the Pong is late. */
  onDue(): void {
    if (this.#starting && !this.#jitter()) return;
    if (this.#awaiting !== null && this.#timeout > 0) {
      // The verdict waits for this turn's I/O: after a stall of the event loop (a long synchronous
      // task), a Pong that arrived in time sits unread in the socket, and timers run before reads.
      this.#verdict = setImmediate(Heartbeat.#judge, this);
      return;
    }
    const payload = randomFillSync(Buffer.allocUnsafe(PING_PAYLOAD_BYTES));
    this.#awaiting = payload;
    this.#sentAt = performance.now();
    this.#arm(this.#timeout > 0 ? this.#timeout : this.#interval);
    this.ping(payload);
  }

  /** The verdict, shared by every heartbeat (it comes as the argument): no closure per connection. */
  static #judge(heartbeat: Heartbeat): void {
    heartbeat.#verdict = null;
    if (heartbeat.#awaiting === null) return; // the Pong was read: pong() has armed the next Ping
    heartbeat.#awaiting = null;
    heartbeat.timedOut();
  }

  #arm(ms: number): void {
    DueList.add(this, ms);
  }
}

/**
 * Closes a connection after `timeout` ms without a message in either direction. Activity is a
 * timestamp, not a timer reset, so a busy connection costs one clock read per message.
 */
export class IdleTimer extends Deadline {
  readonly #timeout: number;
  readonly #onIdle: () => void;
  #last = 0;

  constructor(timeout: number, onIdle: () => void) {
    super();
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
    DueList.remove(this);
  }

  /** @internal The timeout came: idle so long, or activity since moved the deadline on. */
  onDue(): void {
    const idle = performance.now() - this.#last;
    if (idle >= this.#timeout) this.#onIdle();
    else this.#arm(Math.ceil(this.#timeout - idle));
  }

  #arm(ms: number): void {
    DueList.add(this, ms);
  }
}

/**
 * Destroys a socket that has not closed `ms` after start(): the wait for the peer's Close, then for
 * TCP to close (closeTimeout). A deadline on the DueList of its duration, like the heartbeat, so a
 * closing connection sets no Node timer of its own.
 */
export class DestroyTimer extends Deadline {
  readonly #socket: { destroy(): void };

  constructor(socket: { destroy(): void }) {
    super();
    this.#socket = socket;
  }

  start(ms: number): void {
    DueList.add(this, ms);
  }

  stop(): void {
    DueList.remove(this);
  }

  /** @internal The wait is over: the socket goes. */
  onDue(): void {
    this.#socket.destroy();
  }
}
