// A QueueSubscriber that records what a broker delivers, and waits for it by counting (a guard
// deadline only against hangs: no test depends on how fast delivery is).

import type { QueueError, QueueMessage, QueueSubscriber } from '../../src/pubsub/broker.js';

export type Event = [topic: string, id: number, data: string | Buffer] | ['gap', string, number] | ['error', string];

export class Recorder implements QueueSubscriber {
  readonly events: Event[] = [];
  readonly objects: QueueMessage[] = [];
  #waiters: (() => void)[] = [];

  queueMessage(topic: string, message: QueueMessage): void {
    this.objects.push(message);
    this.#push([topic, message.id, message.data]);
  }

  queueGap(topic: string, firstId: number): void {
    this.#push(['gap', topic, firstId]);
  }

  queueError(error: QueueError): void {
    this.#push(['error', error.code]);
  }

  /** Resolves once `count` events were recorded (rejects after `guard` ms: a hang, not a timing). */
  async until(count: number, guard = 20_000): Promise<Event[]> {
    const deadline = Date.now() + guard;
    while (this.events.length < count) {
      if (Date.now() > deadline) throw new Error(`waited for ${count} events, got ${this.events.length}: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
    return this.events;
  }

  #push(event: Event): void {
    this.events.push(event);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Waits until Date.now() is past `time` (for age bounds: the clock decides, not load). */
export async function clockPast(time: number): Promise<void> {
  while (Date.now() <= time) await new Promise((resolve) => setTimeout(resolve, Math.max(1, time - Date.now() + 1)));
}
