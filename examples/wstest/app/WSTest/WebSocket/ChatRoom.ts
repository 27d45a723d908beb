// A chat room on the queue (docs/pubsub.md): each room is a topic, so members on every worker of
// `pef-ws serve --workers N` (or every server on one Redis) see each other's messages. Served at
// /wsChatRoom; the query gives the room (default "lobby"), the nick, and `last`: the id of the last
// line this page showed, when it reconnects, so it gets the lines it missed, in order.
//   new WebSocket(`ws://${location.host}/wsChatRoom?room=kitchen&nick=ann&last=41`)
// The page receives JSON: {welcome, room, worker} first, then {id, text} per line, {gap} when
// history no longer reaches back to `last`. examples/wstest/templates/chat.html is the page.
import { WebSocketHandler, type QueueError } from '../../../../../src/index.js';

let nextGuest = 1;

export default class ChatRoom extends WebSocketHandler {
  // Fields are this connection's state: one instance per connection.
  topic = '';
  nick = '';

  override async onOpen(): Promise<void> {
    const query = new URL(this.request.url ?? '/', 'http://localhost').searchParams;
    const room = (query.get('room') || 'lobby').slice(0, 64);
    this.nick = (query.get('nick') || `guest${nextGuest++}`).slice(0, 32);
    this.topic = `chat:${room}`;
    const last = query.get('last');
    this.send(JSON.stringify({ welcome: this.nick, room, worker: process.pid }));
    if (last !== null && /^\d+$/.test(last)) {
      await this.subscribe(this.topic, Number(last)); // the lines missed come first, in order
    } else {
      await this.subscribe(this.topic);
      await this.publish(this.topic, `* ${this.nick} joined`);
    }
  }

  override async onMessage(message: string | Buffer): Promise<void> {
    const text = typeof message === 'string' ? message : `[${message.length} bytes]`;
    await this.publish(this.topic, `${this.nick}: ${text}`);
  }

  override onQueue(topic: string, message: string | Buffer, id: number): void {
    this.send(JSON.stringify({ id, text: String(message) }));
  }

  override onQueueGap(topic: string, firstId: number): void {
    this.send(JSON.stringify({ gap: firstId }));
  }

  override onQueueError(error: QueueError): void {
    this.send(JSON.stringify({ delayed: error.code }));
  }
}
